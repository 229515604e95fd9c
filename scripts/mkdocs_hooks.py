"""MkDocs hooks (mkdocs.yml ``hooks:``): add the reference pages generated from the code
(``scripts/docs_reference.py``) to the site at build time, so a new subcommand, flag, accelerator
key or result column appears in the docs without anyone editing a page."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from mkdocs.structure.files import File

_HERE = Path(__file__).resolve().parent


def _generator():
    spec = importlib.util.spec_from_file_location("docs_reference", _HERE / "docs_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def on_files(files, config):
    gen = _generator()
    for rel, make in gen.PAGES.items():
        existing = files.get_file_from_path(rel)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, rel, content=make()))
    return files
