"""Write a benchmark's tables and figures into the docs, with the machine and date they were measured on.

A benchmark script builds a :class:`DocsOut`, adds Markdown (tables, text, matplotlib figures) as it
measures, and calls :meth:`DocsOut.write` at the end: that writes
``docs/benchmarks/generated/<name>.md`` (and the PNGs beside it), which a page under
``docs/benchmarks/`` includes with ``--8<-- "<name>.md"``. The tables are also printed, so the
script's output stays what it was. ``make bench`` runs the scripts; the generated files are committed
from a run (CI does not run benchmarks), so a number on the site is always the one a script printed.

    from docs_out import DocsOut          # benchmarks/ is the script's folder, so this imports
    out = DocsOut("published", "python benchmarks/bench_published.py")
    out.table(["design", "speed-up"], [["VEGETA 2:4", "1.40x"]])
    out.write()

A script that prints fixed-width text runs under ``with out.capture(): main()`` instead: what it prints
becomes a text block of the page, named by :func:`page_name` after its arguments.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import io
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "docs" / "benchmarks" / "generated"


def machine() -> str:
    """One line about the machine: CPU model, cores, memory, load, OS and Python."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    try:
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
        load = f", load average {load} at the end"
    except OSError:
        load = ""
    return (f"{cpu}, {os.cpu_count()} cores{mem}{load}; {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def commit() -> str:
    """The commit the code was measured at (``-dirty`` when the tree had changes)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        # the generated pages themselves do not count: a re-run changes them before they are committed
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!docs/benchmarks/generated"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (sha or "unknown") + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def md_table(header, rows) -> str:
    """A Markdown table; cells are converted with ``str``."""
    esc = lambda c: str(c).replace("|", "\\|")   # noqa: E731
    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


def page_name(name: str, argv=None) -> str:
    """The generated page's name for a run with these arguments: ``bench_prune.py --full --part acc``
    writes ``prune-full-part-acc.md``, the default run ``prune.md`` (a partial run never overwrites the
    page of the run the docs include)."""
    args = sys.argv[1:] if argv is None else list(argv)
    parts = [re.sub(r"[^A-Za-z0-9.]+", "-", a).strip("-") for a in args]
    return "-".join([name] + [p for p in parts if p])


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self):
        for s in self.streams:
            s.flush()


class DocsOut:
    """Collects one benchmark's Markdown and writes it to ``docs/benchmarks/generated/<name>.md``."""

    def __init__(self, name: str, command: str, folder: Path | None = None):
        self.name, self.command = name, command
        self.folder = Path(folder) if folder is not None else GENERATED
        self.parts: list[str] = []
        self.started = _dt.datetime.now(_dt.timezone.utc)
        self.commit = commit()            # the code measured: the tree as the run starts, not as it ends

    def text(self, markdown: str) -> None:
        self.parts.append(markdown.strip("\n"))

    def table(self, header, rows, caption: str | None = None, echo: bool = True) -> str:
        md = md_table(header, rows)
        if caption:
            md = f"{caption}\n\n{md}"
        self.parts.append(md)
        if echo:
            print(md, flush=True)
        return md

    @contextlib.contextmanager
    def capture(self):
        """Everything printed to standard output inside the ``with`` block (still printed) becomes one
        ```` ```text ```` block of the page: for scripts whose tables are fixed-width text."""
        buf = io.StringIO()
        real = sys.stdout
        sys.stdout = _Tee(real, buf)
        try:
            yield buf
        finally:
            sys.stdout = real
            text = buf.getvalue().rstrip()
            if text:
                self.parts.append(f"```text\n{text}\n```")

    def figure(self, fig, filename: str, alt: str) -> Path:
        """Save a matplotlib figure as ``<folder>/<filename>`` (PNG) and include it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / filename
        fig.savefig(path, dpi=110, bbox_inches="tight")
        self.parts.append(f"![{alt}](generated/{filename})")
        print(f"wrote {path}")
        return path

    def image(self, path, alt: str) -> None:
        """Include a PNG a tool already wrote into ``folder`` (e.g. a report's figure)."""
        path = Path(path)
        assert path.parent.resolve() == self.folder.resolve(), f"{path} is not in {self.folder}"
        self.parts.append(f"![{alt}](generated/{path.name})")

    def header(self) -> str:
        when = self.started.strftime("%Y-%m-%d %H:%M UTC")
        took = (_dt.datetime.now(_dt.timezone.utc) - self.started).total_seconds()
        return (f"<small>Measured by `{self.command}` on {when} ({took:.0f} s), commit {self.commit}; "
                f"{machine()}.</small>")

    def write(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.name}.md"
        body = "\n\n".join([f"<!-- written by {self.command} (benchmarks/docs_out.py); do not edit -->",
                            self.header(), *self.parts])
        path.write_text(body + "\n")
        print(f"wrote {path}")
        return path


def run_recorded(name: str, script: str, main, argv=None) -> Path:
    """Run ``main()`` (a script's entry point that prints its tables) and write what it printed to
    ``generated/<page_name(name, argv)>.md``, headed by the command, date and machine."""
    args = sys.argv[1:] if argv is None else list(argv)
    out = DocsOut(page_name(name, args), " ".join(["python", f"benchmarks/{script}", *args]))
    with out.capture():
        main()
    return out.write()
