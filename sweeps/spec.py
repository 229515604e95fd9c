"""Sweep specs: parse (YAML) -> validate (key paths in every error) -> expand into points.

    models: [resnet18]                      # zoo names or file.py:fn
    accelerators: [vegeta-flex]             # presets or .yaml files
    sparsity: [dense, "2:4", "1:4"]         # pattern strings, or {glob: pattern} maps
    batch: [1, 8]                           # optional
    training: [null, bdwp]                  # optional: null (inference), bdwp, forward-only-sparse, dense
    seed: 0                                 # the zoo models' weights (not an axis)
    overrides:                              # any accelerator key, dotted path
      compute.dataflow: [ws, os, is]
      compute.rows: [16, 32]
      memories.ifmap_sram.size_bytes: [262144, 524288]   # a memory by name, or memories[0]...
    zip:                                    # axes that vary together (one group = one axis)
      - {compute.rows: [16, 32], compute.cols: [16, 32]}
    where: compute.rows <= 32 or sparsity != "dense"   # drops the combinations it is false for

LLM axes, for ``hf:`` models only (see docs/llm-inference.md; a point's totals are its phase's,
and its LLM columns TTFT, TPOT, tokens/s, energy and DRAM bytes per token come with them):

    models: [hf:llama-3.2-1b]
    phase: [decode]                         # prefill | decode (default decode)
    prompt: [512, 4096]                     # default 512
    generate: [128]                         # default 128
    weight_bits: [16, 4]                    # 16 | 8 | 4 (default 16; 8 and 4 with a scale per 128)
    kv_bits: [16, 8]                        # 16 | 8 | 4 (default 16)
    act_sparsity: [null, 0.5]               # TEAL-style target density in (0, 1], or null

Every combination of the axes (the product, with each zip group as one axis) that ``where`` keeps
is a :class:`Point`: a frozen, hashable configuration whose ``key`` hashes the accelerator document
after overrides (the description with every file it includes, so an edited file or include gives
new keys), the workload's identity (for ``file.py:fn`` the content of the model file and of the
modules it imports from its folder: :func:`workloads.modelspec.model_source_files`), the pattern
and sparsim's version. ``Point.files`` lists every file a point was read from with its hash, so a
store can tell which of its rows an edited file made stale (:mod:`sweeps.store`).
"""
from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SweepError, SweepSpecError
from .expr import Expr

#: LLM axes (``hf:`` models only) and their defaults
LLM_AXES = {"phase": "decode", "prompt": 512, "generate": 128, "weight_bits": 16, "kv_bits": 16, "act_sparsity": None}
_TOP = ("name", "models", "accelerators", "sparsity", "batch", "training", "seed", "overrides", "zip",
        "where") + tuple(LLM_AXES)
#: spec key -> the axis (column) name it makes
STANDARD_AXES = {"models": "model", "accelerators": "accelerator", "sparsity": "sparsity", "batch": "batch",
                 "training": "training", **{k: k for k in LLM_AXES}}
TRAINING_MODES = ("bdwp", "forward-only-sparse", "dense")


@functools.lru_cache(maxsize=1)
def sparsim_version() -> str:
    """The installed sparsim's version (read once: every point's configuration names it)."""
    from importlib import metadata
    try:
        return metadata.version("sparsim")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Point:
    """One configuration of a sweep. Hashable; ``key`` identifies it across runs and specs."""

    key: str
    axes: tuple[tuple[str, Any], ...]     # (column name, value) in the spec's order
    model: str
    batch: int
    seed: int
    training: str | None
    sparsity: Any                         # pattern text, or ((glob, pattern text), ...)
    accelerator_doc: str                  # the accelerator document after overrides, canonical JSON
    files: tuple[tuple[str, str], ...] = ()   # (absolute path, sha256) of each file it was read from
    model_sources: tuple[tuple[str, str], ...] = ()   # those of the model (file.py:fn and its imports)
    llm: tuple = ()                       # hf: models: ((LLM axis, value), ...) for every LLM_AXES key

    @property
    def workload_key(self) -> tuple:
        """Points with the same workload_key simulate the same masked workload."""
        return (self.model, self.batch, self.seed, self.training, self.sparsity, self.model_sources)

    def axes_dict(self) -> dict:
        return {k: _thaw(v) for k, v in self.axes}

    def config(self) -> dict:
        """The full normalized configuration (what ``key`` hashes)."""
        out = {"accelerator": json.loads(self.accelerator_doc),
               "workload": _workload_config(self.model, self.batch, self.seed, self.training,
                                            dict(self.model_sources)),
               "sparsity": _thaw(self.sparsity), "version": sparsim_version()}
        if self.llm:
            out["llm"] = dict(self.llm)
        return out


def _workload_config(model: str, batch: int, seed: int, training, sources: dict) -> dict:
    """The workload part of a point's configuration; a file model's sources only when it has any (so
    a zoo model's key is what it was before sources were keyed)."""
    out = {"model": model, "batch": batch, "seed": seed, "training": training}
    if sources:
        out["sources"] = dict(sorted(sources.items()))
    return out


@dataclass(frozen=True)
class Spec:
    name: str
    axes: tuple[str, ...]       # column names, in order
    points: tuple[Point, ...]
    dropped: int                # combinations the where filter removed
    text: str                   # the spec as given (JSON), kept with the results


def _freeze(v):
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple((str(k), _freeze(x)) for k, x in v.items())
    return v


def _thaw(v):
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v


def _canonical(doc) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)


def sparsity_label(value) -> str:
    """The text a sparsity axis value shows in tables: '2:4', or 'layer1.*=2:4; *=dense'."""
    if isinstance(value, tuple):
        return "; ".join(f"{g}={p}" for g, p in value)
    return str(value)


# ---------------------------------------------------------------------------------------------- parse
def load_spec(source, base_dir=None) -> Spec:
    """A :class:`Spec` from a YAML file path or an already parsed mapping."""
    if isinstance(source, dict):
        doc, base = source, Path(base_dir or ".")
    else:
        path = Path(source)
        from accel.config import read_yaml_document
        doc = read_yaml_document(path, "sweep spec", SweepSpecError)
        base = Path(base_dir) if base_dir else path.parent
    if not isinstance(doc, dict):
        raise SweepSpecError("<spec>: expected a mapping with models, accelerators and sparsity")
    return _build(doc, base)


def _values(doc: dict, key: str, where: str, default=None) -> list:
    """A non-empty list of values (a scalar is a list of one)."""
    if key not in doc:
        if default is None:
            raise SweepSpecError(f"{where}: required key is missing")
        return list(default)
    v = doc[key]
    if not isinstance(v, list):
        v = [v]
    if not v:
        raise SweepSpecError(f"{where}: empty axis; expected at least one value")
    return v


def _model(v, where: str, base: Path) -> str:
    """The model's canonical name: a zoo name, or ``/absolute/path/file.py:fn``."""
    if not isinstance(v, str) or not v.strip():
        raise SweepSpecError(f"{where}: expected a zoo model name or file.py:function, got {v!r}")
    if v.startswith("hf:"):
        return _hf_model(v, where, base)
    path_s, sep, fn = v.rpartition(":")
    if sep and path_s.endswith(".py"):
        p = Path(path_s)
        if not p.is_absolute() and (base / p).is_file():
            p = base / p
        if not p.is_file():
            raise SweepSpecError(f"{where}: model file {path_s} does not exist")
        return f"{p.resolve()}:{fn}"
    from workloads.zoonames import NAMES   # not workloads.zoo: that imports torch
    if v not in NAMES:
        raise SweepSpecError(f"{where}: unknown model {v!r}; expected one of {', '.join(NAMES)} "
                             f"or file.py:function")
    return v


def _hf_model(v: str, where: str, base: Path) -> str:
    """``hf:NAME`` (a built-in) or ``hf:path`` (a folder with config.json, or the file), resolved
    against the spec's folder; transformers is not imported here."""
    from workloads.hf import BUILTIN
    rest = v[3:]
    if rest in BUILTIN:
        return v
    if "/" not in rest and "\\" not in rest and not rest.endswith(".json"):
        raise SweepSpecError(f"{where}: unknown built-in model {rest!r}; expected one of "
                             f"{', '.join(sorted(BUILTIN))} or hf:/path/to/model_or_config.json")
    p = Path(rest).expanduser()
    if not p.is_absolute() and (base / p).exists():
        p = base / p
    if not p.exists():
        raise SweepSpecError(f"{where}: {rest} does not exist (expected a model folder or a config.json)")
    return f"hf:{p.resolve()}"


def _llm_value(axis: str, v, where: str):
    """A validated value of LLM axis ``axis``."""
    if axis == "phase":
        if v not in ("prefill", "decode"):
            raise SweepSpecError(f"{where}: expected prefill or decode, got {v!r}")
        return v
    if axis in ("prompt", "generate"):
        from workloads.llm import MAX_CONTEXT, MAX_GENERATE
        top = MAX_GENERATE if axis == "generate" else MAX_CONTEXT
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= top:
            raise SweepSpecError(f"{where}: expected an integer from 1 to {top:,}, got {v!r}")
        return v
    if axis in ("weight_bits", "kv_bits"):
        if isinstance(v, bool) or v not in (16, 8, 4):
            raise SweepSpecError(f"{where}: expected 16, 8 or 4 bits, got {v!r}")
        return int(v)
    if v is None or (isinstance(v, str) and v.lower() in ("none", "null")):
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
        raise SweepSpecError(f"{where}: expected a density in (0, 1] or null, got {v!r}")
    return float(v)


def _file_hashes(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def _accelerator_doc(v, where: str, base: Path) -> tuple[dict, dict[str, str]]:
    """The description (includes resolved) and ``{path: sha256}`` of the user's files it was read
    from (empty for a preset: its file is sparsim's, named by the version)."""
    import accel
    from accel.config import read_yaml
    if not isinstance(v, str) or not v.strip():
        raise SweepSpecError(f"{where}: expected a preset name or a .yaml file, got {v!r}")
    try:
        if v.lower().endswith((".yaml", ".yml")):
            p = Path(v)
            if not p.is_absolute() and (base / p).is_file():
                p = base / p
            read: list = []
            doc = read_yaml(p, files=read)
            return doc, _file_hashes(read)
        if v.lower().endswith(".cfg"):
            raise SweepSpecError(f"{where}: {v}: SCALE-Sim .cfg files cannot take overrides; "
                                 f"use a preset or a .yaml description")
        return read_yaml(accel.presets.path(v)), {}
    except accel.AccelError as e:
        raise SweepSpecError(f"{where}: {e}") from None


def _sparsity(v, where: str):
    from workloads import WorkloadError
    from workloads.patterns import parse_pattern
    try:
        if isinstance(v, dict):
            if not v:
                raise SweepSpecError(f"{where}: expected a non-empty {{layer glob: pattern}} map")
            return tuple((str(g), str(parse_pattern(p))) for g, p in v.items())
        if isinstance(v, int) and not isinstance(v, bool) and v >= 60:
            # YAML 1.1 reads an unquoted 2:4 as the base-60 number 2 x 60 + 4
            text = f"{v // 60}:{v % 60}"
            raise SweepSpecError(f"{where}: got the number {v}: YAML reads an unquoted {text} as a base-60 "
                                 f"number; quote the pattern: \"{text}\"")
        if not isinstance(v, str):
            raise SweepSpecError(f"{where}: expected a pattern such as dense, '2:4', 'unstructured:0.5' "
                                 f"or a {{layer glob: pattern}} map, got {v!r}")
        return str(parse_pattern(v))
    except WorkloadError as e:
        raise SweepSpecError(f"{where}: {e}") from None


def _batch(v, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise SweepSpecError(f"{where}: expected an integer >= 1, got {v!r}")
    return v


def _training(v, where: str):
    if v is None or (isinstance(v, str) and v.lower() in ("none", "inference")):
        return None
    if v not in TRAINING_MODES:
        raise SweepSpecError(f"{where}: expected null (inference) or one of {', '.join(TRAINING_MODES)}, got {v!r}")
    return v


_SEG = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$")


def _override_path(key: str, where: str) -> list:
    """``memories[0].size_bytes`` -> ['memories', 0, 'size_bytes']."""
    if not isinstance(key, str) or not key:
        raise SweepSpecError(f"{where}: expected a dotted accelerator key such as compute.rows, got {key!r}")
    out: list = []
    for seg in key.split("."):
        m = _SEG.match(seg)
        if not m:
            raise SweepSpecError(f"{where}: '{key}' is not a dotted key path (segment {seg!r})")
        out.append(m.group(1))
        out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return out


def _apply(doc: dict, path: list, value, key: str, where: str, acc_name: str) -> None:
    node = doc
    for i, seg in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, list):
            if isinstance(seg, int):
                if seg >= len(node):
                    raise SweepSpecError(f"{where}: {key}: index {seg} is past the end of a list of "
                                         f"{len(node)} in accelerator '{acc_name}'")
                idx = seg
            else:   # a list element by its name (memories.ifmap_sram)
                names = [e.get("name") for e in node if isinstance(e, dict)]
                if seg not in names:
                    raise SweepSpecError(f"{where}: {key}: accelerator '{acc_name}' has no entry named "
                                         f"'{seg}' here (has {', '.join(map(str, names))})")
                idx = names.index(seg)
            if last:
                node[idx] = value
            else:
                node = node[idx]
            continue
        if not isinstance(node, dict) or isinstance(seg, int):
            raise SweepSpecError(f"{where}: {key}: '{seg}' does not index a "
                                 f"{'list' if isinstance(node, list) else 'mapping'} in accelerator '{acc_name}'")
        if last:
            node[seg] = value
        else:
            if node.get(seg) is None:
                node[seg] = {}
            node = node[seg]


def _check_override_keys(keys, where_of):
    """Override keys must name accelerator description keys (:data:`accel.config.KEYS`)."""
    from accel.config import KEYS as known
    top_keys = [k for k in known[""] if k != "include"]
    for key in keys:
        path = _override_path(key, where_of(key))
        names = [p for p in path if isinstance(p, str)]
        head = names[0]
        if head not in top_keys:
            axes = "" if where_of(key).startswith("overrides") else \
                f"an axis ({', '.join(STANDARD_AXES)}) or "
            raise SweepSpecError(f"{where_of(key)}: unknown {'accelerator key' if not axes else 'axis'} "
                                 f"'{head}'; expected {axes}an accelerator key under "
                                 f"{', '.join(top_keys)}")
        if head == "memories":
            # memories[i].key or memories.<name>.key
            field = names[-1] if len(names) >= 2 else None
            if field is None or (len(names) == 2 and not isinstance(path[1], int)):
                raise SweepSpecError(f"{where_of(key)}: expected memories[i].<key> or memories.<name>.<key>")
            if field not in known["memories"]:
                raise SweepSpecError(f"{where_of(key)}: unknown memory key '{field}'; expected one of "
                                     f"{', '.join(known['memories'])}")
            continue
        if len(names) >= 2:
            scope = ".".join(names[:-1])
            if names[:2] == ["compute", "timing"] and len(names) == 2:
                continue
            allowed = known.get(scope)
            if allowed is None:
                raise SweepSpecError(f"{where_of(key)}: '{scope}' has no sub-keys to override")
            if names[-1] not in allowed:
                raise SweepSpecError(f"{where_of(key)}: unknown key '{names[-1]}' under {scope}; "
                                     f"expected one of {', '.join(allowed)}")


def _build(doc: dict, base: Path) -> Spec:
    unknown = [k for k in doc if k not in _TOP]
    if unknown:
        raise SweepSpecError(f"{unknown[0]}: unknown key; expected one of {', '.join(_TOP)}")
    seed = doc.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SweepSpecError(f"seed: expected an integer >= 0, got {seed!r}")
    name = doc.get("name", "sweep")
    if not isinstance(name, str):
        raise SweepSpecError(f"name: expected a string, got {name!r}")

    # -- zip groups first: an axis named there is not also a plain axis
    zips = doc.get("zip", []) or []
    if not isinstance(zips, list):
        raise SweepSpecError(f"zip: expected a list of {{axis: [values]}} groups, got {zips!r}")
    zipped: dict[str, tuple[int, list, str]] = {}      # axis -> (group, raw values, where)
    for gi, group in enumerate(zips):
        gw = f"zip[{gi}]"
        if not isinstance(group, dict) or len(group) < 1:
            raise SweepSpecError(f"{gw}: expected a mapping of axis -> list of values")
        lengths = set()
        for axis, vals in group.items():
            aw = f"{gw}.{axis}"
            if not isinstance(vals, list) or not vals:
                raise SweepSpecError(f"{aw}: expected a non-empty list of values")
            lengths.add(len(vals))
            name_ = STANDARD_AXES.get(axis, axis)
            if name_ in zipped:
                raise SweepSpecError(f"{aw}: axis '{name_}' is already in zip[{zipped[name_][0]}]")
            if axis in STANDARD_AXES and axis in doc or (name_ in STANDARD_AXES.values() and
                                                          {v: k for k, v in STANDARD_AXES.items()}[name_] in doc):
                raise SweepSpecError(f"{aw}: axis '{name_}' is also given at the top level; give it in one place")
            if isinstance(doc.get("overrides"), dict) and axis in doc["overrides"]:
                raise SweepSpecError(f"{aw}: axis '{axis}' is also under overrides; give it in one place")
            zipped[name_] = (gi, vals, aw)
        if len(lengths) > 1:
            raise SweepSpecError(f"{gw}: the axes of a zip group must have equal lengths, got "
                                 + ", ".join(f"{a}: {len(v)}" for a, v in group.items()))

    # -- raw values of each axis, validated
    def where_of(axis_name, i=None):
        if axis_name in zipped:
            w = zipped[axis_name][2]
        elif axis_name in STANDARD_AXES.values():
            w = {v: k for k, v in STANDARD_AXES.items()}[axis_name]
        else:
            w = f"overrides.{axis_name}"
        return w if i is None else f"{w}[{i}]"

    raw: dict[str, list] = {}
    for spec_key, axis in STANDARD_AXES.items():
        if axis in zipped:
            raw[axis] = zipped[axis][1]
        elif spec_key in doc:
            raw[axis] = _values(doc, spec_key, spec_key)
        elif spec_key in ("models", "accelerators", "sparsity"):
            raise SweepSpecError(f"{spec_key}: required key is missing")
    overrides = doc.get("overrides", {}) or {}
    if not isinstance(overrides, dict):
        raise SweepSpecError(f"overrides: expected a mapping of accelerator key -> list of values, got {overrides!r}")
    override_axes = [k for k in overrides] + [a for a in zipped if a not in STANDARD_AXES.values()]
    _check_override_keys(override_axes, where_of)
    for key in overrides:
        raw[key] = _values(overrides, key, f"overrides.{key}")
    for key in override_axes:
        if key in zipped:
            raw[key] = zipped[key][1]

    models = {i: _model(v, where_of("model", i), base) for i, v in enumerate(raw["model"])}
    from workloads.modelspec import model_source_files
    model_files = {i: model_source_files(m) for i, m in models.items()}
    acc_read = {i: _accelerator_doc(v, where_of("accelerator", i), base) for i, v in enumerate(raw["accelerator"])}
    acc_docs = {i: d for i, (d, _) in acc_read.items()}
    sparsities = {i: _sparsity(v, where_of("sparsity", i)) for i, v in enumerate(raw["sparsity"])}
    batches = {i: _batch(v, where_of("batch", i)) for i, v in enumerate(raw.get("batch", [1]))}
    trainings = {i: _training(v, where_of("training", i)) for i, v in enumerate(raw.get("training", [None]))}
    llm_given = [a for a in LLM_AXES if a in raw]
    llm_vals = {a: {i: _llm_value(a, v, where_of(a, i)) for i, v in enumerate(raw.get(a, [LLM_AXES[a]]))}
                for a in LLM_AXES}
    for i, m in models.items():
        if llm_given and not m.startswith("hf:"):
            raise SweepSpecError(f"{where_of('model', i)}: {m!r} is not an hf: model; the LLM axes "
                                 f"({', '.join(llm_given)}) apply to hf: models only")
        if m.startswith("hf:") and any(t is not None for t in trainings.values()):
            raise SweepSpecError(f"{where_of('model', i)}: {m}: training applies to zoo and file models, not hf: LLMs")

    axes = [a for a in STANDARD_AXES.values() if a in raw] + override_axes
    # product dimensions: each plain axis, and each zip group as one dimension
    dims: list[list[dict[str, int]]] = []
    done_groups = set()
    for a in axes:
        if a in zipped:
            gi = zipped[a][0]
            if gi in done_groups:
                continue
            done_groups.add(gi)
            group_axes = [x for x in zipped if zipped[x][0] == gi]
            n = len(zipped[a][1])
            dims.append([{x: i for x in group_axes} for i in range(n)])
        else:
            dims.append([{a: i} for i in range(len(raw[a]))])

    wheres = doc.get("where", []) or []
    if isinstance(wheres, str):
        wheres = [wheres]
    if not isinstance(wheres, list):
        raise SweepSpecError(f"where: expected an expression or a list of expressions, got {wheres!r}")
    try:
        filters = [Expr(w, f"where[{i}]" if len(wheres) > 1 else "where", set(axes)) for i, w in enumerate(wheres)]
    except SweepError as e:
        raise SweepSpecError(str(e)) from None
    version = sparsim_version()
    points: list[Point] = []
    seen: set[str] = set()
    dropped = 0
    built: dict[str, None] = {}
    docs: dict[tuple, str] = {}
    base_docs = {i: json.dumps(d) for i, d in acc_docs.items()}
    for combo in itertools.product(*dims):
        idx: dict[str, int] = {}
        for part in combo:
            idx.update(part)
        values = {a: _thaw(_freeze(raw[a][idx[a]])) for a in axes}
        shown = dict(values)
        shown["model"] = raw["model"][idx["model"]]
        shown["sparsity"] = sparsity_label(sparsities[idx["sparsity"]])
        if "training" in shown:
            shown["training"] = trainings[idx["training"]] or "none"
        try:
            keep = all(f(shown) for f in filters)
        except SweepError as e:
            raise SweepSpecError(str(e)) from None
        if not keep:
            dropped += 1
            continue
        acc_i = idx["accelerator"]
        doc_id = (acc_i,) + tuple(idx[k] for k in override_axes)
        adoc_json = docs.get(doc_id)
        if adoc_json is None:      # the document after overrides, built and validated once
            adoc = json.loads(base_docs[acc_i])
            acc_name = str(adoc.get("name", raw["accelerator"][acc_i]))
            for key in override_axes:
                _apply(adoc, _override_path(key, where_of(key)), copy.deepcopy(raw[key][idx[key]]), key,
                       where_of(key, idx[key]), acc_name)
            adoc_json = docs[doc_id] = _canonical(adoc)
            if adoc_json not in built:
                _validate_accelerator(adoc, {k: values[k] for k in override_axes}, acc_name, where_of, idx)
                built[adoc_json] = None
        model, batch = models[idx["model"]], batches[idx.get("batch", 0)]
        training, sparsity = trainings[idx.get("training", 0)], sparsities[idx["sparsity"]]
        workload = _workload_config(model, batch, seed, training, model_files[idx["model"]])
        llm = (tuple((a, llm_vals[a][idx.get(a, 0)]) for a in LLM_AXES) if model.startswith("hf:") else ())
        llm_json = f'"llm":{_canonical(dict(llm))},' if llm else ""
        # == _canonical(Point.config()), assembled from parts (keys in sorted order)
        config_json = (f'{{"accelerator":{adoc_json},{llm_json}"sparsity":{_canonical(_thaw(sparsity))},'
                       f'"version":{_canonical(version)},"workload":{_canonical(workload)}}}')
        key = hashlib.sha256(config_json.encode()).hexdigest()[:24]
        if key in seen:
            continue    # two spellings of one configuration
        seen.add(key)
        points.append(Point(key=key, axes=tuple((a, _freeze(shown[a])) for a in axes), model=model,
                            batch=batch, seed=seed, training=training, sparsity=sparsity,
                            accelerator_doc=adoc_json,
                            files=tuple(sorted({**model_files[idx["model"]], **acc_read[acc_i][1]}.items())),
                            model_sources=tuple(model_files[idx["model"]].items()), llm=llm))
    if not points:
        raise SweepSpecError("where: the filter drops every combination; nothing to run")
    return Spec(name=name, axes=tuple(axes), points=tuple(points), dropped=dropped,
                text=json.dumps(doc, default=str))


def _validate_accelerator(adoc: dict, overrides: dict, acc_name: str, where_of, idx) -> None:
    """Build the overridden accelerator once, so a wrong type fails the spec (naming the override);
    an FPGA budget it exceeds does not: that point is recorded as infeasible."""
    import accel
    try:
        accel.build(copy.deepcopy(adoc))
    except accel.FpgaFitError:
        return
    except accel.AccelError as e:
        msg = str(e)
        culprit = next((k for k in overrides if msg.startswith(_override_doc_path(k))), None)
        if culprit is not None:
            raise SweepSpecError(f"{where_of(culprit, idx[culprit])} = {overrides[culprit]!r} "
                                 f"(accelerator '{acc_name}'): {msg}") from None
        combo = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
        raise SweepSpecError(f"accelerator '{acc_name}'" + (f" with {combo}" if combo else "") + f": {msg}") from None


def _override_doc_path(key: str) -> str:
    """The key path the accelerator validator names for an override key (memories by index)."""
    return key.split("[")[0] if not key.startswith("memories") else "memories"
