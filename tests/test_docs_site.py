"""The documentation site builds (`mkdocs build --strict`), every page is in the navigation, no
internal link or anchor is broken, and the main pages render in headless Chromium (screenshots).

Set SPARSIM_DOCS_SCREENSHOTS=folder to keep the screenshots."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
#: the pages photographed: the home page, a how-to guide, a generated reference page, a benchmark page
SHOTS = ["index.html", "howto/describe-accelerator.html", "reference/cli.html", "benchmarks/published.html"]


def _nav_pages(nav) -> list[str]:
    out = []
    for item in nav:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            for v in item.values():
                out += _nav_pages(v) if isinstance(v, list) else [v]
    return out


def test_every_page_is_in_the_navigation():
    cfg = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = set(_nav_pages(cfg["nav"]))
    generated = {"reference/cli.md", "reference/accelerator-keys.md", "reference/result-columns.md"}
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")
             if "generated" not in p.parts}
    missing = sorted(pages - nav)
    assert not missing, ("pages under docs/ that mkdocs.yml's nav does not list; add a line such as "
                         + "; ".join(f"`- {Path(m).stem.replace('-', ' ').capitalize()}: {m}`" for m in missing)
                         + " under the right section (the commented block in mkdocs.yml names the pages of other "
                           "branches)")
    absent = sorted(p for p in nav - pages - generated)
    assert not absent, f"nav entries without a page: {absent}"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        for key in ("href", "src"):
            if a.get(key) and tag in ("a", "img", "link", "script"):
                self.links.append(a[key])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("mkdocs is not installed (pip install -e .[docs], which scripts/setup.sh does)")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_MKDOCS_2_WARNING="1")
    p = subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "-d", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-4000:]
    return out


@pytest.mark.slow
def test_site_builds_and_no_internal_link_is_broken(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 30
    parsed = {}
    for page in pages:
        lp = _Links()
        lp.feed(page.read_text(encoding="utf-8"))
        parsed[page] = lp
    broken, external = [], set()
    for page, lp in parsed.items():
        for link in lp.links:
            u = urlparse(link)
            if u.scheme in ("http", "https", "mailto", "data"):
                external.add(link)
                continue
            path, frag = urldefrag(link)
            if not path:
                target = page
            elif path.startswith("/"):             # 404.html links from the server's root
                target = (site / unquote(path).lstrip("/")).resolve()
            else:
                target = (page.parent / unquote(path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {link}")
            elif frag and target.suffix == ".html" and target in parsed and frag not in parsed[target].ids:
                broken.append(f"{page.relative_to(site)}: {link} (no anchor #{frag})")
    assert not broken, broken
    # the generated reference pages hold what the code defines
    cli = (site / "reference" / "cli.html").read_text()
    assert "--sparsity" in cli and "--scheduler" in cli and "--fpga-yaml" in cli
    keys = (site / "reference" / "accelerator-keys.html").read_text()
    assert "compute.nm_overflow" in keys and "memories[i].double_buffered" in keys
    # the benchmark tables came from a script run, with the machine and date
    pub = (site / "benchmarks" / "published.html").read_text()
    assert "Measured by" in pub and "VEGETA 2:4" in pub


@pytest.mark.slow
def test_main_pages_render_in_headless_chromium(site, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    keep = os.environ.get("SPARSIM_DOCS_SCREENSHOTS")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--hide-scrollbars", "--virtual-time-budget=4000", "--window-size=1280,1000"]
    for rel in SHOTS:
        url = (site / rel).as_uri()
        dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=180)
        assert dom.returncode == 0, dom.stderr[-2000:]
        # Material rendered: the navigation with the site's sections, the page's own title
        assert 'class="md-nav' in dom.stdout and "How-to guides" in dom.stdout and "Reference" in dom.stdout, rel
        assert re.search(r"<h1[^>]*>", dom.stdout), rel
        shot = tmp_path / (rel.replace("/", "_").replace(".html", ".png"))
        subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", url], capture_output=True, timeout=180)
        assert shot.exists() and shot.stat().st_size > 30_000, rel     # a blank page is a few kB
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / shot.name)
