"""Checks on output paths, run before a command does its work (so a long run never ends in a
traceback because ``--out`` points into a missing or read-only directory).

Any command that writes a file calls :func:`check_writable` on each output argument first::

    from sparsim._io import check_writable
    check_writable(args.out, "--out", suffixes=(".json",))

It raises :class:`OutputPathError` (a ``ValueError``; the CLI prints it as one line and exits 2).
"""
from __future__ import annotations

import os
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that cannot be written: its message names the argument and the reason."""


def check_writable(path, flag: str = "--out", suffixes: tuple[str, ...] = (), hint: str = "") -> Path | None:
    """Check that ``path`` (the value of command-line argument ``flag``) can be written.

    ``None`` passes (the argument was not given). Otherwise the file name must end in one of
    ``suffixes`` (when given; ``hint`` is added to that message), must not be a directory, its
    directory must exist and be writable, and an existing file must be writable. Nothing is created.
    """
    if path is None:
        return None
    p = Path(path)
    where = f"{flag} {path}"
    if str(path).strip() == "":
        raise OutputPathError(f"{flag}: expected a file name, got an empty string")
    if suffixes and p.suffix.lower() not in suffixes:
        names = ", ".join(suffixes[:-1]) + (" or " if len(suffixes) > 1 else "") + suffixes[-1]
        raise OutputPathError(f"{where}: expected a {names} file name{'; ' + hint if hint else ''}")
    if p.is_dir():
        raise OutputPathError(f"{where}: is a directory; expected a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise OutputPathError(f"{where}: directory {parent} does not exist")
    if not parent.is_dir():
        raise OutputPathError(f"{where}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{where}: directory {parent} is not writable")
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputPathError(f"{where}: the file exists and is not writable")
    return p
