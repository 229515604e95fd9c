import json

import numpy as np
import pytest

import sparsim
from workloads import (NM, MaskError, Layer, LayerKind, PatternError, Phase, TopologyError, WeightLayout,
                       Workload, WorkloadError, parse_pattern)


@pytest.fixture(scope="module")
def r18():
    return sparsim.trace_zoo("resnet18")


@pytest.fixture(scope="module")
def vit():
    return sparsim.trace_zoo("vit_small")


def test_sparsify_every_pattern_on_real_layers(r18):
    for text in ["dense", "2:4", "1:4", "2:8", "3:7", "unstructured:0.3", "block:4x4:0.5", "channel:0.5"]:
        wl = r18.sparsify(text)
        p = parse_pattern(text)
        for layer in wl.layers:
            if text == "dense":
                assert layer.mask is None
                continue
            assert layer.mask.shape == layer.weight.shape and layer.pattern == p
            np.testing.assert_array_equal(layer.gemm_mask(), p.mask(layer.gemm_weight()))
        assert wl.macs == r18.macs


def test_sparsify_glob_mapping(r18):
    wl = r18.sparsify({"layer1.*": "2:4", "fc": "unstructured:0.1"})
    assert wl.layer("layer1.0.conv1").pattern == NM(2, 4)
    assert wl.layer("fc").density == pytest.approx(0.1, abs=1e-3)
    assert wl.layer("conv1").mask is None
    with pytest.raises(PatternError, match="match no layer"):
        r18.sparsify({"nothing.*": "2:4"})


def test_attention_layers_carry_no_mask(vit):
    wl = vit.sparsify("2:4")
    att = [l for l in wl.layers if l.kind is LayerKind.ATTENTION]
    assert len(att) == 24 and all(l.mask is None and l.weight is None for l in att)
    assert all(l.mask is not None for l in wl.layers if l.weight is not None)


def test_mask_shape_mismatch_is_rejected(r18):
    layer = r18.layer("fc")
    with pytest.raises(MaskError, match=r"layer 'fc': mask shape \(3, 3\) does not match weight fc.weight shape"):
        layer.with_mask(np.ones((3, 3), dtype=bool))
    with pytest.raises(MaskError, match="does not match"):
        Layer(name="x", kind=LayerKind.LINEAR, m=1, n=4, k=8, weight=np.ones((4, 8), np.float32),
              weight_layout=WeightLayout.NK, mask=np.ones((8, 4), bool))
    with pytest.raises(MaskError, match="positive integer"):
        Layer(name="x", kind=LayerKind.LINEAR, m=0, n=4, k=8)


@pytest.mark.parametrize("mode", ["bdwp", "forward-only-sparse", "dense"])
def test_training_expansion(r18, mode):
    wl = r18.sparsify("2:4")
    tr = wl.training(mode)
    assert len(tr.layers) == 3 * len(wl.layers) and tr.macs == 3 * wl.macs
    for fwd_l, (f, bd, bw) in zip(wl.layers, zip(tr.layers[0::3], tr.layers[1::3], tr.layers[2::3])):
        assert (f.phase, bd.phase, bw.phase) == (Phase.FORWARD, Phase.BACKWARD_DATA, Phase.BACKWARD_WEIGHT)
        assert (bd.m, bd.n, bd.k) == (fwd_l.m, fwd_l.k, fwd_l.n)
        assert (bw.m, bw.n, bw.k) == (fwd_l.k, fwd_l.n, fwd_l.m)
        assert bw.mask is None and bw.weight is None
        if mode == "dense":
            assert f.mask is None and bd.mask is None
        elif mode == "bdwp":
            np.testing.assert_array_equal(f.mask, fwd_l.mask)
            # N:M along the backward GEMM's reduction axis (the forward's output axis), chosen on
            # the dense weight, so backward-data is 2:4 too
            assert bd.mask_stats(4).is_nm(2)
            np.testing.assert_array_equal(bd.gemm_mask(), NM(2, 4).mask(fwd_l.gemm_weight().transpose(0, 2, 1)))
        else:
            np.testing.assert_array_equal(bd.gemm_mask(), fwd_l.gemm_mask().transpose(0, 2, 1))
    with pytest.raises(WorkloadError, match="already a forward|already a backward"):
        tr.training("bdwp")
    with pytest.raises(WorkloadError, match="training mode must be one of"):
        wl.training("sideways")


def test_forward_only_sparse_backward_is_not_nm(r18):
    tr = r18.sparsify("2:4").training("forward-only-sparse")
    bd = tr.layer("layer1.0.conv1.bwd_data")
    assert bd.density == pytest.approx(0.5) and not bd.mask_stats(4).is_nm(2)


def test_save_load_roundtrip(tmp_path, r18):
    wl = r18.sparsify({"layer1.*": "2:4", "fc": "block:4x4:0.5"}).training("bdwp")
    p = wl.save(tmp_path / "wl.json")
    back = Workload.load(p)
    assert back.name == wl.name and back.batch == wl.batch and len(back) == len(wl)
    for a, b in zip(wl.layers, back.layers):
        assert (a.name, a.kind, a.m, a.n, a.k, a.groups, a.phase, a.weight_name, a.conv) == \
               (b.name, b.kind, b.m, b.n, b.k, b.groups, b.phase, b.weight_name, b.conv)
        assert str(a.pattern) == str(b.pattern)
        if a.mask is None:
            assert b.mask is None
        else:
            np.testing.assert_array_equal(a.mask, b.mask)
        assert b.weight is None
    assert back.macs == wl.macs and back.nnz_macs == wl.nnz_macs
    full = Workload.load(wl.save(tmp_path / "full.json", weights=True))
    np.testing.assert_array_equal(full.layer("fc.fwd").weight, wl.layer("fc.fwd").weight)
    assert not (tmp_path / "wl.json.tmp").exists()


def test_load_rejects_bad_files(tmp_path):
    with pytest.raises(WorkloadError, match="no such file"):
        Workload.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(WorkloadError, match="not valid JSON"):
        Workload.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something"}))
    with pytest.raises(WorkloadError, match="format 'sparsim-workload'"):
        Workload.load(tmp_path / "other.json")


def test_scalesim_roundtrip_keeps_gemm_shapes(tmp_path):
    wl = sparsim.trace_zoo("mobilenet_v2").sparsify("2:4")
    for fmt in ("conv", "gemm"):
        path = tmp_path / f"topo_{fmt}.csv"
        text = wl.to_scalesim_csv(path, fmt=fmt)
        lines = text.strip().splitlines()
        assert all(line.endswith(",") for line in lines)
        assert "Sparsity" in lines[0]
        back = Workload.from_scalesim_csv(path)
        # grouped convs become one row per group; MACs and per-row shapes are preserved
        assert back.macs == wl.macs
        assert len(back.layers) == sum(l.groups for l in wl.layers)
        first = back.layers[0]
        assert (first.m, first.n, first.k) == (wl.layers[0].m, wl.layers[0].n, wl.layers[0].k)
        assert all(l.pattern == NM(2, 4) and l.mask_stats(4).is_nm(2) for l in back.layers)


def test_scalesim_conv_row_geometry():
    wl = sparsim.trace_zoo("resnet18")
    rows = wl.to_scalesim_csv(fmt="conv").splitlines()
    assert rows[0].startswith("Layer name, IFMAP Height, IFMAP Width, Filter Height")
    assert rows[1] == "conv1, 229, 229, 7, 7, 3, 64, 2,"  # 224 + 2*3 padding, trimmed to what strides reach
    assert rows[-1] == "fc, 1, 512, 1, 512, 1, 1000, 1,"  # a GEMM row, as SCALE-Sim converts M, N, K


def test_scalesim_import_rejects_bad_csv(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                 "c1, 10, 10, 3, 3, 4,\n")
    with pytest.raises(TopologyError, match=r"t.csv:2: row has 6 columns, missing Num Filter, Strides"):
        Workload.from_scalesim_csv(p)
    p.write_text("Layer, M, N\nx, 1, 2\n")
    with pytest.raises(TopologyError, match="header has 3 columns"):
        Workload.from_scalesim_csv(p)
    p.write_text("Layer, M, N, K, Sparsity,\nx, 4, 4, 4, 5:4,\n")
    with pytest.raises(TopologyError, match="Sparsity column"):
        Workload.from_scalesim_csv(p)
    p.write_text("Layer, M, N, K,\nx, 4, zero, 4,\n")
    with pytest.raises(TopologyError, match="column 'N' must be a positive integer"):
        Workload.from_scalesim_csv(p)
    with pytest.raises(TopologyError, match="no such file"):
        Workload.from_scalesim_csv(tmp_path / "nope.csv")


def test_scalesim_depthwise_dp_rows(tmp_path):
    p = tmp_path / "dw.csv"
    p.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                 "DP1, 10, 10, 3, 3, 8, 1, 1,\n")
    (layer,) = Workload.from_scalesim_csv(p).layers
    assert (layer.groups, layer.m, layer.n, layer.k) == (8, 64, 1, 9)
