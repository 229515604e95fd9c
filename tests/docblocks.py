"""Collect and run the command and code blocks of the documentation (README.md and docs/**/*.md).

The convention every page follows (docs/contributing-docs.md states it for writers):

* a ```` ```console ```` block holds commands, each on a line starting ``$ `` (a trailing ``\\``
  continues it on the next line); the lines below a command, up to the next ``$ ``, are its
  output as shown, and the output the command prints must match it:
  - ``...`` alone on a line stands for any number of lines (none included), ``...`` inside a line
    for any text on that line; runs of spaces match runs of spaces of any length;
  - numbers are compared exactly, unless the block is marked ``<!-- tolerance: 5% -->``: then
    every number shown may differ from the printed one by that share (machine-dependent figures);
  - a command whose shown output holds ``error:`` must fail (exit status not 0) and is compared on
    its standard error; any other must succeed and is compared on its standard output (progress
    bars and warnings on standard error are not compared); a command shown without output only
    has to succeed;
* a ```` ```python ```` block runs as it is, in a fresh interpreter;
* markers go on the lines right above the fence: ``<!-- slow -->`` (the block runs only under
  ``pytest -m slow``, which ``make test`` includes), ``<!-- tolerance: 5% -->``, and
  ``<!-- norun: reason -->`` for the few commands a test cannot run (``make test`` itself);
* the blocks of one page run in order in one scratch folder that holds links to the repository's
  top-level files and folders (so ``examples/...`` resolves and what a command writes stays out of
  the tree); a slow block runs alone in a folder of its own, so it must not need an earlier block;
* a block that only runs benchmark scripts (``python benchmarks/bench_x.py``) is a benchmark: it runs
  under ``pytest -m bench`` (``make bench``), not in ``make test``; its numbers belong in the files
  the script writes for the docs, which the page includes.

A block that includes a file (``--8<-- "examples/x.py"``, as the site's snippets extension does)
runs the file. Other fences (```` ```yaml ````, ```` ```text ````, plain ```` ``` ````) are shown, not run.
Run ``python tests/docblocks.py`` for the count of blocks and commands per page.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_LANGS = ("console", "python")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
_MARKER = re.compile(r"^\s*<!--\s*(?P<body>slow|norun:.*?|tolerance:\s*[0-9.]+\s*%)\s*-->\s*$")
_NUMBER = r"[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"


class DocFormatError(ValueError):
    """A block that does not follow the convention (a console block with output before any command,
    an unknown marker); the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class Block:
    path: Path
    line: int                 # 1-based line of the opening fence
    lang: str
    text: str
    slow: bool = False
    norun: str | None = None  # the reason given, when the block is not run
    tolerance: float | None = None  # relative, for numbers in shown output

    @property
    def bench(self) -> bool:
        """A console block whose every command runs a benchmark script (``python benchmarks/bench_*.py``):
        a benchmark, run by ``make bench`` (pytest ``-m bench``), not by ``make test``."""
        if self.lang != "console" or self.norun:
            return False
        try:
            cmds = commands(self)
        except DocFormatError:
            return False
        return all(re.match(r"python3? benchmarks/bench_\w+\.py\b", c.cmd) for c in cmds)

    @property
    def where(self) -> str:
        try:
            rel = self.path.relative_to(ROOT)
        except ValueError:
            rel = self.path
        return f"{rel}:{self.line}"


@dataclasses.dataclass(frozen=True)
class Command:
    line: int                 # 1-based line in the page
    cmd: str
    expected: tuple[str, ...]


def doc_pages(root: Path = ROOT) -> list[Path]:
    """README.md and every page under docs/ (the benchmark tables that `make bench` writes are included
    into pages, not pages of their own, and hold no commands)."""
    pages = [root / "README.md"] + sorted((root / "docs").rglob("*.md"))
    return [p for p in pages if p.exists() and "generated" not in p.relative_to(root).parts]


def blocks(path: Path) -> list[Block]:
    """The runnable blocks (console, python) of a Markdown file, with their markers."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group("indent"), m.group("fence"), m.group("lang").lower()
        start = i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence[0] * len(fence)):
            ln = lines[i]
            body.append(ln[len(indent):] if ln.startswith(indent) else ln.lstrip())
            i += 1
        i += 1
        if lang not in RUN_LANGS:
            continue
        body = _expand_snippets(body, path, start + 1)
        slow, norun, tol = False, None, None
        j = start - 1
        while j >= 0 and lines[j].strip().startswith("<!--"):
            mk = _MARKER.match(lines[j])
            if not mk:
                raise DocFormatError(f"{path}:{j + 1}: unknown marker {lines[j].strip()!r}; expected "
                                     f"<!-- slow -->, <!-- norun: reason --> or <!-- tolerance: N% -->")
            b = mk.group("body")
            if b == "slow":
                slow = True
            elif b.startswith("norun:"):
                norun = b[len("norun:"):].strip()
                if not norun:
                    raise DocFormatError(f"{path}:{j + 1}: <!-- norun: --> needs a reason")
            else:
                tol = float(b.split(":")[1].strip().rstrip("%")) / 100
            j -= 1
        out.append(Block(Path(path), start + 1, lang, "\n".join(body), slow, norun, tol))
    return out


_SNIPPET = re.compile(r'^\s*-{2}8<-{2}\s+"(?P<file>[^"]+)"\s*$')
#: where ``--8<-- "file"`` lines look, as mkdocs.yml's pymdownx.snippets base_path
SNIPPET_DIRS = (ROOT / "docs" / "benchmarks" / "generated", ROOT)


def _expand_snippets(lines: list[str], path, line: int) -> list[str]:
    """A block that includes a file (``--8<-- "examples/x.py"``) runs what the site shows: the file."""
    out = []
    for ln in lines:
        m = _SNIPPET.match(ln)
        if not m:
            out.append(ln)
            continue
        found = next((d / m.group("file") for d in SNIPPET_DIRS if (d / m.group("file")).is_file()), None)
        if found is None:
            raise DocFormatError(f"{path}:{line}: included file {m.group('file')!r} not found")
        out += found.read_text(encoding="utf-8").splitlines()
    return out


def commands(block: Block) -> list[Command]:
    """The commands of a console block, each with the output shown under it."""
    cmds: list[list] = []
    lines = block.text.splitlines()
    k = 0
    while k < len(lines):
        ln = lines[k]
        if ln.startswith("$ ") or ln == "$":
            first = block.line + 1 + k
            cmd = ln[2:]
            while cmd.endswith("\\") and k + 1 < len(lines):
                k += 1
                cmd = cmd[:-1] + " " + lines[k].strip()
            cmds.append([first, cmd.strip(), []])
        elif cmds:
            cmds[-1][2].append(ln)
        elif ln.strip():
            raise DocFormatError(f"{block.where}: console block has output before its first `$ ` command line")
        k += 1
    if not cmds:
        raise DocFormatError(f"{block.where}: console block without a `$ ` command line (use ```text to show output)")
    out = []
    for first, cmd, exp in cmds:
        while exp and not exp[-1].strip():
            exp.pop()
        out.append(Command(first, cmd, tuple(exp)))
    return out


# ------------------------------------------------------------------------------------ comparison
def _line_pattern(line: str, tolerant: bool, numbers: list) -> str:
    """A regex for one shown line: ``...`` is any text, whitespace runs any whitespace run, numbers
    (when tolerant) captured for comparison."""
    parts = re.split(r"(\.\.\.|\s+|" + _NUMBER + ")", line.rstrip())
    pat = []
    for p in parts:
        if not p:
            continue
        if p == "...":
            pat.append(".*?")
        elif p.isspace():
            pat.append(r"\s+")
        elif tolerant and re.fullmatch(_NUMBER, p) and any(c.isdigit() for c in p):
            numbers.append(p)
            pat.append(f"({_NUMBER})")
        else:
            pat.append(re.escape(p))
    return "".join(pat)


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def output_mismatch(expected, actual: str, tolerance: float | None = None) -> str | None:
    """None when ``actual`` (what a command printed) matches the shown ``expected`` lines, else a diff."""
    exp = list(expected)
    if not exp:
        return None
    # as a terminal shows it: a carriage return (progress bars) starts the line again
    act_lines = [l.rsplit("\r", 1)[-1].rstrip() for l in actual.replace("\r\n", "\n").split("\n")]
    while act_lines and not act_lines[-1]:
        act_lines.pop()
    text = "\n".join(act_lines) + "\n"
    numbers: list[str] = []
    pat = []
    for ln in exp:
        if ln.strip() == "...":
            pat.append(r"(?:[^\n]*\n)*?")
        else:
            pat.append(r"[ \t]*" + _line_pattern(ln.strip(), tolerance is not None, numbers) + r"[ \t]*\n")
    m = re.fullmatch("".join(pat), text)
    why = None
    if m is None:
        why = "the output differs from the page"
    else:
        for shown, got in zip(numbers, m.groups()):
            e, a = _num(shown), _num(got)
            if abs(a - e) > tolerance * abs(e) + 1e-12:
                why = f"{got} is not within {tolerance:.0%} of the page's {shown}"
                break
    if why is None:
        return None
    diff = "\n".join(difflib.unified_diff(exp, act_lines, "shown in the page", "printed", lineterm="", n=2))
    return f"{why}\n{diff}"


# ------------------------------------------------------------------------------------ running
def scratch_dir(path: Path, root: Path = ROOT) -> Path:
    """A folder in which a page's commands run: links to the repository's top-level entries, so
    relative paths (examples/, accel/presets/) resolve, while new files land in the folder."""
    path.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.name in (".git", ".venv", "site", "build") or (path / entry.name).exists():
            continue
        (path / entry.name).symlink_to(entry)
    return path


def _env(root: Path = ROOT) -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["MPLBACKEND"] = "Agg"
    env["COLUMNS"] = "200"
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


class BlockFailed(AssertionError):
    pass


def run_block(block: Block, cwd: Path, timeout: float = 900) -> int:
    """Run one block in ``cwd``; raise :class:`BlockFailed` naming the page and line on a mismatch,
    a failing command or a Python exception. Returns the number of commands (1 for Python)."""
    env = _env()
    if block.lang == "python":
        script = cwd / f"_doc_block_{block.line}.py"
        script.write_text(block.text + "\n")
        p = subprocess.run([sys.executable, script.name], cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode != 0:
            raise BlockFailed(f"{block.where}: python block failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
        return 1
    cmds = commands(block)
    for c in cmds:
        p = subprocess.run(["bash", "-o", "pipefail", "-c", c.cmd], cwd=cwd, env=env, capture_output=True,
                           text=True, timeout=timeout)
        where = f"{block.path.relative_to(ROOT) if block.path.is_relative_to(ROOT) else block.path}:{c.line}"
        must_fail = any("error:" in e for e in c.expected)
        if must_fail and p.returncode == 0:
            raise BlockFailed(f"{where}: `{c.cmd}` succeeded, but the page shows an error")
        if not must_fail and p.returncode != 0:
            raise BlockFailed(f"{where}: `{c.cmd}` failed (exit {p.returncode}):\n{(p.stdout + p.stderr)[-3000:]}")
        # a command that succeeds is compared on what it prints to standard output (progress bars and
        # warnings on standard error are not part of it), one that fails on its standard error
        bad = output_mismatch(c.expected, p.stderr if must_fail else p.stdout, block.tolerance)
        if bad:
            raise BlockFailed(f"{where}: `{c.cmd}`: {bad}")
    return len(cmds)


def summary(root: Path = ROOT) -> dict:
    """Per page: (blocks run fast, blocks run slow, benchmark blocks, blocks not run, commands run)."""
    out = {}
    for page in doc_pages(root):
        bl = blocks(page)
        if not bl:
            continue
        n_cmd = sum(len(commands(b)) if b.lang == "console" else 1 for b in bl if not b.norun)
        out[str(page.relative_to(root))] = (sum(1 for b in bl if not b.slow and not b.norun and not b.bench),
                                            sum(1 for b in bl if b.slow and not b.norun and not b.bench),
                                            sum(1 for b in bl if b.bench),
                                            sum(1 for b in bl if b.norun), n_cmd)
    return out


if __name__ == "__main__":
    s = summary()
    w = max(map(len, s)) if s else 10
    print(f"{'page':{w}s}  fast  slow  bench  norun  commands")
    for k, (f, sl, be, nr, nc) in s.items():
        print(f"{k:{w}s}  {f:4d}  {sl:4d}  {be:5d}  {nr:5d}  {nc:8d}")
    tot = [sum(v[i] for v in s.values()) for i in range(5)]
    print(f"{'total':{w}s}  {tot[0]:4d}  {tot[1]:4d}  {tot[2]:5d}  {tot[3]:5d}  {tot[4]:8d}")
