"""Every command and code block of README.md and docs/ runs, and shows what the code prints.

The convention is in tests/docblocks.py (and docs/contributing-docs.md). Fast blocks run in plain
`pytest`, page by page, in order, in one scratch folder per page; blocks marked `<!-- slow -->` run
under `-m slow` (`make test`, CI), each in a folder of its own. The selected pages (and slow blocks)
run concurrently, one per core: the work is in the subprocesses the blocks start.
"""
from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import docblocks as db

_PAGES = db.doc_pages()
_FAST = [(p, [b for b in db.blocks(p) if not b.slow and not b.norun and not b.bench]) for p in _PAGES]
_FAST = [(p, bl) for p, bl in _FAST if bl]
_SLOW = [b for p in _PAGES for b in db.blocks(p) if b.slow and not b.norun and not b.bench]
_BENCH = [b for p in _PAGES for b in db.blocks(p) if b.bench]


def _id(p):
    return str(p.relative_to(db.ROOT))


#: under pytest-xdist (`make test` runs `-n 2`) the workers share the pages out, one test at a time;
#: without it the selected pages run concurrently in one fixture, one per core
_XDIST = "PYTEST_XDIST_WORKER" in os.environ
_FAST_BY_ID = {_id(p): bl for p, bl in _FAST}
_SLOW_BY_ID = {b.where: [b] for b in _SLOW}


def _run_job(key, blocks, tmp_root):
    """Run ``blocks`` in order in one scratch folder; the exception (reported by the job's test) or None."""
    cwd = db.scratch_dir(tmp_root / f"job{abs(hash(key))}" / "run")
    t0 = time.perf_counter()
    try:
        for b in blocks:
            db.run_block(b, cwd)
    except Exception as e:            # noqa: BLE001 - reported by the test of this job
        return e
    finally:
        if os.environ.get("SPARSIM_DOCS_TIMES"):   # profiling: one line per job, seconds of wall time
            with open(os.environ["SPARSIM_DOCS_TIMES"], "a") as f:
                f.write(f"{time.perf_counter() - t0:8.1f} s  {key}\n")
    return None


def _run_all(jobs, tmp_root):
    """Run ``{id: [blocks]}`` concurrently, one job per core (the work is in subprocesses, so threads
    suffice). Returns ``{id: exception or None}``."""
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        return dict(zip(jobs, pool.map(lambda kv: _run_job(*kv, tmp_root), jobs.items())))


def _selected(request, name):
    return [it.callspec.id for it in request.session.items
            if getattr(it, "originalname", None) == name and hasattr(it, "callspec")]


@pytest.fixture(scope="module")
def fast_results(request, tmp_path_factory):
    if _XDIST:
        return None
    ids = set(_selected(request, "test_page_blocks"))
    return _run_all({k: bl for k, bl in _FAST_BY_ID.items() if k in ids}, tmp_path_factory.mktemp("docs-fast"))


@pytest.fixture(scope="module")
def slow_results(request, tmp_path_factory):
    if _XDIST:
        return None
    ids = set(_selected(request, "test_slow_block"))
    return _run_all({k: bl for k, bl in _SLOW_BY_ID.items() if k in ids}, tmp_path_factory.mktemp("docs-slow"))


def _outcome(results, key, jobs, tmp_path):
    return results[key] if results is not None else _run_job(key, jobs[key], tmp_path)


@pytest.mark.parametrize("page", [p for p, _ in _FAST], ids=[_id(p) for p, _ in _FAST])
def test_page_blocks(page, fast_results, tmp_path):
    """The page's fast blocks, in order (without xdist all selected pages run at once, one per core)."""
    err = _outcome(fast_results, _id(page), _FAST_BY_ID, tmp_path)
    if err is not None:
        raise err


@pytest.mark.slow
@pytest.mark.parametrize("block", _SLOW, ids=[b.where for b in _SLOW])
def test_slow_block(block, slow_results, tmp_path):
    err = _outcome(slow_results, block.where, _SLOW_BY_ID, tmp_path)
    if err is not None:
        raise err


@pytest.mark.slow
@pytest.mark.bench
@pytest.mark.parametrize("block", _BENCH, ids=[b.where for b in _BENCH])
def test_benchmark_block(block, tmp_path):
    """A benchmark a page shows (``make bench`` runs these; ``make test`` leaves benchmarks out)."""
    err = _run_job(block.where, [block], tmp_path)
    if err is not None:
        raise err


def test_benchmark_blocks_name_scripts_that_exist():
    """``make test`` does not run the benchmark blocks, but the scripts they name must exist."""
    for b in _BENCH:
        for c in db.commands(b):
            script = c.cmd.split()[1]
            assert (db.ROOT / script).is_file(), f"{b.where}: {script} does not exist"


def test_pages_follow_the_convention():
    """Every page parses (no output before a command, no unknown marker), not-run blocks are few
    and say why, and there is something to run."""
    n_run, norun = 0, []
    for p in _PAGES:
        for b in db.blocks(p):
            if b.lang == "console":
                db.commands(b)
            if b.norun:
                norun.append(b)
            else:
                n_run += 1
    assert n_run >= 40, n_run
    assert len(norun) <= 6, [b.where for b in norun]


# ------------------------------------------------------------------------------------------ the collector itself
BROKEN = '''# A page with broken examples

<!-- tolerance: 5% -->
```console
$ python -c "print('cycles 1,000 at 2:4')"
cycles 1,100 at 2:4
```

```console
$ python -c "print('cycles 1,000 at 2:4')"
cycles 1,001 at 2:4
```

```console
$ python -c "print('one'); print('two'); print('three')"
one
...
four
```

```console
$ python -c "import sys; sys.exit(3)"
```

```console
$ python -c "print('fine')"
sparsim simulate: error: this should have failed
```

```python
import sparsim
assert sparsim.simulate(sparsim.trace_zoo("mlp_digits"), "vegeta-flex").totals["cycles"] == 1
```
'''

GOOD = '''# A page whose examples hold

<!-- tolerance: 5% -->
```console
$ python -c "print('cycles 1,040 in 3.2 s')"
cycles 1,000 in ... s
$ python -c "print('a'); print('b'); print('c')"
a
...
c
$ python -c "import sys; print('tool: error: bad --x', file=sys.stderr); sys.exit(2)"
tool: error: bad --x
```

```python
x = 1 + 1
assert x == 2
```
'''


def test_collector_fails_each_broken_example(tmp_path):
    page = tmp_path / "broken.md"
    page.write_text(BROKEN)
    bl = db.blocks(page)
    assert [b.lang for b in bl] == ["console"] * 5 + ["python"]
    assert bl[0].tolerance == pytest.approx(0.05) and bl[1].tolerance is None
    cwd = db.scratch_dir(tmp_path / "run")
    reasons = []
    for b in bl:
        with pytest.raises(db.BlockFailed) as e:
            db.run_block(b, cwd)
        msg = str(e.value)
        assert msg.startswith(f"{page}:"), msg      # names the page and line
        reasons.append(msg)
    assert "1,000 is not within 5% of the page's 1,100" in reasons[0]
    assert "differs" in reasons[1] and "-cycles 1,001 at 2:4" in reasons[1]
    assert "differs" in reasons[2] and "four" in reasons[2]
    assert "failed (exit 3)" in reasons[3]
    assert "succeeded, but the page shows an error" in reasons[4]
    assert "python block failed" in reasons[5] and "AssertionError" in reasons[5]


def test_collector_passes_good_examples(tmp_path):
    page = tmp_path / "good.md"
    page.write_text(GOOD)
    cwd = db.scratch_dir(tmp_path / "run")
    assert sum(db.run_block(b, cwd) for b in db.blocks(page)) == 4


def test_a_real_page_with_one_number_changed_fails(tmp_path):
    """The README's simulate example, with one digit of its shown cycle count changed, fails the test."""
    import re
    readme = (db.ROOT / "README.md").read_text()
    m = re.search(r"\): (\d{1,3}(?:,\d{3})+) cycles", readme)
    assert m, "the README's tour shows a simulate summary line"
    shown = m.group(1)
    wrong = shown[:-1] + str((int(shown[-1]) + 1) % 10)
    page = tmp_path / "README.md"
    page.write_text(readme.replace(f"): {shown} cycles", f"): {wrong} cycles", 1))
    block = next(b for b in db.blocks(page) if f"{wrong} cycles" in b.text)
    with pytest.raises(db.BlockFailed, match="differs"):
        db.run_block(block, db.scratch_dir(tmp_path / "run"))


def test_markers_and_format_errors(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("<!-- slow -->\n<!-- tolerance: 2% -->\n```console\n$ true\n```\n\n"
                    "<!-- norun: needs a GPU -->\n```python\nimport nothing\n```\n\n```yaml\na: 1\n```\n")
    a, b = db.blocks(page)
    assert a.slow and a.tolerance == pytest.approx(0.02) and not a.norun
    assert b.norun == "needs a GPU" and not b.slow
    page.write_text("```console\nsome output\n$ true\n```\n")
    with pytest.raises(db.DocFormatError, match="output before its first"):
        db.commands(db.blocks(page)[0])
    page.write_text("<!-- slwo -->\n```console\n$ true\n```\n")
    with pytest.raises(db.DocFormatError, match="unknown marker"):
        db.blocks(page)
    page.write_text("```console\n$ echo a \\\n   b\nalso shown\n```\n")
    (c,) = db.commands(db.blocks(page)[0])
    assert c.cmd == "echo a  b" and c.expected == ("also shown",) and c.line == 2


# ------------------------------------------------------------------------------------------ benchmark pages
def test_a_printing_benchmark_writes_its_page(tmp_path, capsys, monkeypatch):
    """What a benchmark prints under DocsOut.capture() is still printed and becomes a text block of its
    generated page, named after its arguments and headed by the command, date and machine."""
    import sys
    monkeypatch.syspath_prepend(str(db.ROOT / "benchmarks"))
    import docs_out
    assert docs_out.page_name("prune", []) == "prune"
    assert docs_out.page_name("prune", ["--full", "--part", "acc"]) == "prune-full-part-acc"
    assert docs_out.page_name("search", ["speed"]) == "search-speed"
    monkeypatch.setattr(docs_out, "GENERATED", tmp_path)
    monkeypatch.setattr(sys, "argv", ["bench_x.py", "--full"])
    path = docs_out.run_recorded("x", "bench_x.py", lambda: print("design  cycles\nvegeta  1,234"))
    assert path == tmp_path / "x-full.md"
    assert "design  cycles\nvegeta  1,234" in capsys.readouterr().out
    text = path.read_text()
    assert "Measured by `python benchmarks/bench_x.py --full` on " in text and " cores" in text
    assert text.rstrip().endswith("```text\ndesign  cycles\nvegeta  1,234\n```")


_GENERATED = db.ROOT / "docs" / "benchmarks" / "generated"
#: a table cell holding only a number (with its unit, a share, a speed-up or a spread): a measured figure
_NUMBER_CELL = re.compile(r"[-+−~≈]?\d[\d,]*(?:\.\d+)?\s*(?:x|%|s|ms|min|[kMG]i?B|[kMG]|pJ|uJ|µJ)?"
                          r"(?:\s*±\s*\d[\d,]*(?:\.\d+)?\s*(?:x|%)?)?")


def _included(page):
    return re.findall(r'^\s*-{2}8<-{2}\s+"([^"/]+\.md)"\s*$', page.read_text(), re.M)


def test_benchmark_pages_take_their_numbers_from_generated_includes():
    """A benchmark page quotes no measured number of its own: no table cell that is a number, and no
    commit named as where a figure came from, outside the files `make bench` writes (and includes)."""
    bad = []
    for page in sorted((db.ROOT / "docs" / "benchmarks").glob("*.md")):
        fenced = False
        for i, line in enumerate(page.read_text().splitlines(), 1):
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            if fenced:
                continue
            if re.search(r"\bcommit [0-9a-f]{7,40}\b", line):
                bad.append(f"{page.name}:{i}: names a commit as the source of a figure")
            if line.lstrip().startswith("|"):
                cells = [c.strip().strip("*`").strip() for c in line.strip().strip("|").split("|")]
                nums = [c for c in cells if _NUMBER_CELL.fullmatch(c)]
                if nums:
                    bad.append(f"{page.name}:{i}: table cell {nums[0]!r} typed into the page")
    assert not bad, "measured numbers belong in docs/benchmarks/generated/ (benchmarks/docs_out.py):\n" + "\n".join(bad)


def test_make_bench_writes_every_included_page():
    """Every generated file a page includes is written by a script that `make bench` runs (through
    benchmarks/run_all.py or a page's benchmark block), through benchmarks/docs_out.py, and nothing in
    generated/ is left unused."""
    run_all = (db.ROOT / "benchmarks" / "run_all.py").read_text()
    on_their_own = set(re.findall(r'"(bench_\w+\.py)"', run_all.split("ON_THEIR_OWN", 1)[1].split("\n", 1)[0]))
    # `make bench` also runs the benchmark blocks of the pages (pytest -m bench)
    on_their_own -= {Path(c.cmd.split()[1]).name for b in _BENCH for c in db.commands(b)}
    writers = {}
    for script in sorted((db.ROOT / "benchmarks").glob("bench_*.py")):
        for name in re.findall(r'(?:DocsOut|run_recorded)\(\s*"([\w-]+)"', script.read_text()):
            writers[name] = script.name
    pages = db.doc_pages()
    included = {f for p in pages for f in _included(p)}
    problems = []
    for f in sorted(included):
        name = f[:-3]
        if name not in writers:
            problems.append(f"{f}: no benchmark writes it")
        elif writers[name] in on_their_own and name not in NOT_IN_MAKE_BENCH:
            problems.append(f"{f}: written by {writers[name]}, which `make bench` does not run")
        elif not (_GENERATED / f).is_file():
            problems.append(f"{f}: not written yet (run {writers[name]})")
        elif not (_GENERATED / f).read_text().startswith("<!-- written by") and name not in NOT_IN_MAKE_BENCH:
            problems.append(f"{f}: not the output of a run (no docs_out header)")
    text = "\n".join(p.read_text() for p in pages) + "\n".join((_GENERATED / f).read_text() for f in included
                                                            if (_GENERATED / f).is_file())
    for f in sorted(_GENERATED.iterdir()):
        if f.name not in included and f"generated/{f.name}" not in text:
            problems.append(f"generated/{f.name}: included by no page")
    assert not problems, "\n".join(problems)


#: included pages that `make bench` does not rewrite, each with the reason
NOT_IN_MAKE_BENCH = {
    "scalesim": "bench_scalesim.py installs SCALE-Sim into its own venv and runs for many minutes (run it alone)",
    "llm_prune": "bench_llm_prune.py trains code_lm and evaluates it for about 30 minutes a seed, one process per "
                 "seed; docs/llm-pruning.md gives the commands that wrote the page",
    "llmcompressor": "bench_llmcompressor.py installs llmcompressor into its own venv (run it alone; "
                     "docs/llm-pruning.md gives the command)",
}
