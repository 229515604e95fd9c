"""Import of a SCALE-Sim ``.cfg`` file, so SCALE-Sim users can bring their configurations.

Mapping: ``ArrayHeight``/``ArrayWidth`` -> rows/cols; ``Dataflow``; ``IfmapSramSzkB``,
``FilterSramSzkB``, ``OfmapSramSzkB`` -> three double-buffered memories (SCALE-Sim's buffers are
double buffered too). SCALE-Sim counts words, not bytes, and has no clock: one word is taken as
one byte (8-bit operands) and the clock as 1 GHz. ``InterfaceBandwidth: USER`` takes ``Bandwidth``
(words per cycle) as the DRAM bandwidth; ``CALC`` (SCALE-Sim sizes the interface so nothing stalls)
gives an unlimited DRAM. SRAM ports are not a limit in SCALE-Sim, so they get no limit here.
``SparsitySupport: true`` allows any N:M up to ``BlockSize`` (rounded up to a power of two), as
v3's layer-wise N:M does.
"""
from __future__ import annotations

import configparser
from pathlib import Path

from .errors import AccelConfigError

CLOCK_HZ = 1.0e9
UNLIMITED = 1.0e12  # bytes per cycle: never the bottleneck


def cfg_to_doc(path) -> dict:
    path = Path(path)
    cp = configparser.ConfigParser()
    try:
        read = cp.read(path)
    except configparser.Error as e:
        raise AccelConfigError(f"SCALE-Sim config {path}: cannot be parsed ({e})") from None
    if not read:
        raise AccelConfigError(f"SCALE-Sim config {path}: no such file")

    def get(section, key, default=None):
        if cp.has_option(section, key):
            return cp.get(section, key).strip()
        if default is None:
            raise AccelConfigError(f"SCALE-Sim config {path}: [{section}] {key} is missing")
        return default

    def as_int(section, key, default=None):
        v = get(section, key, default)
        try:
            iv = int(v)
        except ValueError:
            raise AccelConfigError(f"SCALE-Sim config {path}: [{section}] {key}: expected an integer, got '{v}'") from None
        if iv < 1:
            raise AccelConfigError(f"SCALE-Sim config {path}: [{section}] {key}: expected a positive integer, got {iv}")
        return iv

    arch = "architecture_presets"
    rows, cols = as_int(arch, "ArrayHeight"), as_int(arch, "ArrayWidth")
    df = get(arch, "Dataflow").lower()
    if df not in ("ws", "os", "is"):
        raise AccelConfigError(f"SCALE-Sim config {path}: [{arch}] Dataflow: expected ws, os or is, got '{df}'")
    mode = get("run_presets", "InterfaceBandwidth", "CALC").upper()
    if mode not in ("USER", "CALC"):
        raise AccelConfigError(f"SCALE-Sim config {path}: [run_presets] InterfaceBandwidth: expected USER or CALC, "
                               f"got '{get('run_presets', 'InterfaceBandwidth')}'")
    if mode == "USER":
        text = get(arch, "Bandwidth")
        try:
            bw_words = float(text.split(",")[0])
        except ValueError:
            bw_words = float("nan")
        if not (bw_words > 0 and bw_words != float("inf")):
            raise AccelConfigError(f"SCALE-Sim config {path}: [{arch}] Bandwidth: expected a positive number of "
                                   f"words per cycle (InterfaceBandwidth: USER), got '{text}'")
        dram_bw = bw_words * CLOCK_HZ
    else:
        dram_bw = UNLIMITED * CLOCK_HZ
    modes = ["dense"]
    doc_compute = {"rows": rows, "cols": cols, "dataflow": df, "clock_hz": CLOCK_HZ, "activation_bits": 8,
                   "weight_bits": 8, "accumulator_bits": 8, "sparse_modes": modes}
    if get("sparsity", "SparsitySupport", "false").lower() == "true":
        block = as_int("sparsity", "BlockSize", "4")
        doc_compute["arbitrary_nm_max_m"] = max(2, 1 << (block - 1).bit_length())
    mems = []
    for key, name, holds in (("IfmapSramSzkB", "ifmap_sram", ["activation"]),
                             ("FilterSramSzkB", "filter_sram", ["weight"]),
                             ("OfmapSramSzkB", "ofmap_sram", ["output"])):
        mems.append({"name": name, "size_bytes": as_int(arch, key) * 1024, "read_bw_bytes_per_cycle": UNLIMITED,
                     "holds": holds})
    return {"name": get("general", "run_name", path.stem).strip('"') or path.stem,
            "description": f"imported from SCALE-Sim config {path.name}",
            "source": str(path), "compute": doc_compute, "memories": mems,
            "dram": {"bandwidth_bytes_per_s": dram_bw}}


def load_cfg(path):
    from .config import build
    return build(cfg_to_doc(path), source=str(path))
