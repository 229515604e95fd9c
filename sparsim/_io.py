"""Checks on output paths, run before a command does its work (so a long run never ends in a
traceback because ``--out`` points into a missing or read-only directory).

Any command that writes a file calls :func:`check_writable` on each output argument first::

    from sparsim._io import check_writable
    check_writable(args.out, "--out", suffixes=(".json",))

It raises :class:`OutputPathError` (a ``ValueError``; the CLI prints it as one line and exits 2).
A write that still fails after the work (a full disk, a file system that refuses the name) goes
through :func:`writing`, which turns the ``OSError`` into the same one line::

    with writing(args.out, "--out"):
        result.save(args.out)
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that cannot be written: its message names the argument and the reason."""


def check_writable(path, flag: str = "--out", suffixes: tuple[str, ...] = (), hint: str = "") -> Path | None:
    """Check that ``path`` (the value of command-line argument ``flag``) can be written.

    ``None`` passes (the argument was not given). Otherwise the file name must end in one of
    ``suffixes`` (when given; ``hint`` is added to that message), must not be a directory, its
    directory must exist and be writable, and an existing file must be writable. Writability is
    tried, not only looked up (a file is created in the directory and removed; an existing file is
    opened for appending and closed unchanged), so that ``/proc/r.json`` or a read-only mount is
    refused before the work starts, also for root. Nothing is left behind.
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
    try:
        if p.exists():
            with open(p, "ab"):
                pass
        else:
            fd, probe = tempfile.mkstemp(dir=parent, prefix=".sparsim-write-check-")
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        raise OutputPathError(f"{where}: cannot write {'the file' if p.exists() else f'in directory {parent}'} "
                              f"({e.strerror or e})") from None
    return p


@contextlib.contextmanager
def writing(path, flag: str = "--out"):
    """Turn an ``OSError`` raised while writing ``path`` (argument ``flag``) into an
    :class:`OutputPathError` naming both: one line on the CLI, exit status 2."""
    try:
        yield
    except OSError as e:
        raise OutputPathError(f"{flag} {path}: writing failed ({e.strerror or e})") from None
