"""Named accelerator presets: YAML files in ``accel/presets/``, each citing where its numbers come from."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import AccelConfigError


def _dir() -> Path:
    return Path(str(resources.files("accel") / "presets"))


def names() -> list[str]:
    return sorted(p.stem for p in _dir().glob("*.yaml"))


def path(name: str) -> Path:
    p = _dir() / f"{name}.yaml"
    if not p.is_file():
        raise AccelConfigError(f"accelerator '{name}': not a preset ({', '.join(names())}) "
                               f"and not a .yaml or .cfg file")
    return p


def load(name: str):
    from .config import load_yaml
    return load_yaml(path(name))
