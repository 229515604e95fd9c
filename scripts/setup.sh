#!/usr/bin/env bash
# Installs everything sparsim needs on a fresh Debian machine, idempotently:
#   Debian: verilator, iverilog, yosys (RTL simulation and synthesis), chromium (report tests, screenshots)
#   Python: a .venv with torch pinned to the local CPU wheel, then sparsim and its dependencies,
#           with the test (dev) and documentation (docs: MkDocs, Material, mkdocstrings) extras.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

need_apt=()
command -v verilator >/dev/null 2>&1 || need_apt+=(verilator)
command -v iverilog  >/dev/null 2>&1 || need_apt+=(iverilog)
command -v yosys     >/dev/null 2>&1 || need_apt+=(yosys)
command -v chromium  >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# --no-compile: pip would byte-compile all ~18,500 .py files of the dependencies (about 80 s of CPU, most
# of the set-up's); Python compiles the modules a run imports on first use and keeps them in __pycache__
PIP="$VENV/bin/python -m pip"
# The CPU build of torch lies on the machine; asking for it first keeps pip from pulling CUDA wheels.
$VENV/bin/python -c "import torch" 2>/dev/null || $PIP install -q --no-compile torch==2.13.0
# compat: the checkout itself goes on sys.path, so a script run from a folder holding a folder named like
# one of our packages (examples/accel/ beside examples/*.py) still imports ours, not a namespace package
$PIP install -q --no-compile -e ".[dev,docs]" --config-settings editable_mode=compat
touch "$VENV/.installed"
echo "setup: done"
