"""BRA2d / BRABlock2d: Bi-Level Routing Attention as a drop-in NCHW layer for CNNs.

Parity with the official layer (tests/fixtures: official BiLevelRoutingAttention outputs and
gradients, auto_pad cases included) through the NCHW layer; shapes on YOLO-like maps; the
region_size grid; topk capping; construction errors; mixed precision; gradients; export to
Paddle Inference.
"""
import glob
import math
import os
import sys

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import pytest
from conftest import FIXTURES, ROOT, load_cases, rel_err

import paddle_biformer as pb
import paddle_biformer.bra as bra_module
import paddle_biformer.ops as ops_module
from paddle_biformer import BiLevelRoutingAttention, torch_layouts
from paddle_biformer.bra2d import BRA2d, BRABlock2d, region_grid

sys.path.insert(0, os.path.join(ROOT, "tools"))
from parity_fuzz import TOL, check_case, failures  # noqa: E402


def nhwc(x):
    return x.transpose([0, 2, 3, 1])


def nchw(x):
    return x.transpose([0, 3, 1, 2])


def twin_nhwc_layer(m: BRA2d, n_win: int, topk: int) -> BiLevelRoutingAttention:
    """The NHWC layer (official layout, auto_pad) with m's options and weights."""
    ref = BiLevelRoutingAttention(m.dim, num_heads=m.num_heads, n_win=n_win, qk_dim=m.qk_dim, topk=topk,
                                  side_dwconv=m.lepe.weight.shape[-1] if m.lepe is not None else 0,
                                  auto_pad=True)
    ref.set_state_dict(m.state_dict())
    return ref


# ----------------------------------------------------------------------------- official fixtures
def _as_official(grid):
    """BRA2d and BRABlock2d under the official constructors, for tools/parity_fuzz.check_case;
    ``grid``: the BRA2d grid argument (default: the case's n_win). The BRA adapter takes the
    official NHWC input, permutes it to NCHW, runs BRA2d.forward (the NCHW layer under test)
    and permutes back."""

    class Bra(BRA2d):
        def __init__(self, dim, n_win=7, auto_pad=False, kv_downsample_kernel=None, **kwargs):
            super().__init__(dim, **(grid or {"n_win": n_win}), **kwargs)

        def forward(self, x, ret_attn_mask=False):
            result = super().forward(nchw(x), ret_attn_mask)
            if ret_attn_mask:
                return (nhwc(result[0]),) + tuple(result[1:])
            return nhwc(result)

    class Blk(BRABlock2d):
        def __init__(self, dim, n_win=7, auto_pad=False, pre_norm=True, **kwargs):
            super().__init__(dim, **(grid or {"n_win": n_win}), **kwargs)

    return Bra, Blk


def _block_like_bra2d(kw):
    """An official Block that BRABlock2d reproduces: routing attention, pre-norm, position conv
    3x3 or none (BRABlock2d pads other kernels to keep the size; the official pads 1)."""
    return kw["topk"] > 0 and kw.get("pre_norm", True) and kw.get("before_attn_dwconv", 3) in (0, 3)


def _cases(kind):
    out = []
    for folder in ("official", "fuzz", "bra2d"):
        cases, arrays = load_cases(os.path.join(FIXTURES, folder))
        out += [pytest.param(case, arrays, id=f"{folder}-{case['name']}") for case in cases
                if case["kind"] == kind and (kind == "bra" or _block_like_bra2d(case["kwargs"]))]
    return out


def test_fixtures_hold_auto_pad_cases():
    cases = [p.values[0] for p in _cases("bra") + _cases("block")]
    padded = [c["name"] for c in cases if c["kwargs"].get("auto_pad") and any(
        size % c["kwargs"]["n_win"] for size in (c["input_shape"][1:3] if c["kind"] == "bra" else c["input_shape"][2:]))]
    assert len(padded) >= 7, padded
    assert sum(c["kind"] == "block" for c in cases) >= 3


@pytest.mark.parametrize("case,arrays", _cases("bra") + _cases("block"))
def test_matches_official_layer(case, arrays, monkeypatch):
    """Official weights loaded by name into BRA2d / BRABlock2d (norm='layer'): BRA2d's NCHW
    output == the official NHWC BiLevelRoutingAttention(auto_pad=True) output permuted, and
    BRABlock2d == the official Block(auto_pad=True); routing, attention weights and every
    gradient as tools/parity_fuzz.check_case checks them."""
    bra, block = _as_official(case.get("bra2d_grid"))
    monkeypatch.setattr(pb, "BiLevelRoutingAttention", bra)
    monkeypatch.setattr(pb, "Block", block)
    errors = check_case(case, arrays)
    assert "output" in errors and "grad.input" in errors
    assert not any(k.startswith("state dict") for k in errors), errors
    assert not failures(errors), {k: v for k, v in errors.items() if k in failures(errors)}


def test_official_weights_load_by_name():
    """The official state dict (PyTorch names, Linear weights [out, in]) converts and loads
    with no missing or unexpected names."""
    cases, arrays = load_cases(os.path.join(FIXTURES, "official"))
    case = next(c for c in cases if c["name"] == "bra_soft_param_routing")
    prefix = case["name"] + "/param."
    state = torch_layouts({k[len(prefix):]: arrays[k] for k in arrays.files if k.startswith(prefix)})
    kw = dict(case["kwargs"])
    m = BRA2d(kw.pop("dim"), **kw)
    assert set(m.state_dict()) == set(state)
    assert all(list(m.state_dict()[k].shape) == list(v.shape) for k, v in state.items())


# ----------------------------------------------------------------------------- shapes and grids
@pytest.mark.parametrize("shape,grid_kw,grid", [
    ((1, 64, 13, 17), dict(n_win=7), (7, 7)),
    ((1, 32, 80, 80), dict(n_win=7), (7, 7)),
    ((1, 32, 40, 40), dict(n_win=7), (7, 7)),
    ((1, 32, 20, 20), dict(n_win=7), (7, 7)),
    ((1, 32, 80, 80), dict(region_size=8), (10, 10)),
    ((1, 32, 40, 40), dict(region_size=8), (5, 5)),
    ((2, 32, 20, 20), dict(region_size=8), (3, 3)),
    ((1, 64, 13, 17), dict(region_size=8), (2, 3)),
    ((1, 16, 1, 1), dict(n_win=7), (7, 7)),
    ((1, 16, 5, 3), dict(region_size=8), (1, 1)),
])
def test_any_size_keeps_shape(shape, grid_kw, grid):
    m = BRA2d(shape[1], num_heads=8, **grid_kw)
    m.eval()
    assert m.grid(*shape[2:]) == grid
    with paddle.no_grad():
        out = m(paddle.randn(shape))
    assert list(out.shape) == list(shape) and out.dtype == paddle.float32
    assert np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("shape,kw,n_win,topk", [
    ((2, 64, 13, 17), dict(n_win=7), 7, 4),
    ((1, 32, 80, 80), dict(region_size=8), 10, 4),
    ((1, 32, 40, 40), dict(region_size=8), 5, 4),
    ((1, 32, 20, 20), dict(region_size=8), 3, 4),
    ((1, 32, 20, 20), dict(region_size=8, topk=16), 3, 9),     # capped: 9 regions
    ((1, 32, 12, 12), dict(n_win=2, topk=8), 2, 4),             # capped: 4 regions
])
def test_equals_nhwc_layer_with_auto_pad(shape, kw, n_win, topk):
    """BRA2d(x) == permute(BiLevelRoutingAttention(auto_pad=True)(permute(x))) with the grid the
    region size gives for this input (so the region count follows the input size) and topk
    capped at the number of regions."""
    m = BRA2d(shape[1], num_heads=4, **kw)
    m.eval()
    ref = twin_nhwc_layer(m, n_win, topk)
    ref.eval()
    x = paddle.randn(shape)
    with paddle.no_grad():
        out, r_weight, r_idx, _ = m(x, ret_attn_mask=True)
        expected = nchw(ref(nhwc(x)))
    assert list(r_idx.shape) == [shape[0], n_win * n_win, topk]
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=0, atol=1e-6)


def test_region_size_semantics():
    """ceil(size / region_size) regions per side; regions at most region_size pixels; the padding
    is under one pixel per region, so no region is padding only (unlike a fixed n_win)."""
    for size in range(1, 90):
        for s in (1, 2, 3, 7, 8, 16):
            rows, _ = region_grid(size, size, region_size=s)
            side = -(-size // rows)
            assert rows == math.ceil(size / s) and side <= s
            assert rows * side - size < side  # no all-padding row of regions
    assert region_grid(48, 80, region_size=8) == (6, 10)
    assert region_grid(48, 80, region_size=(8, 16)) == (6, 5)
    assert region_grid(13, 17, n_win=7) == (7, 7)
    assert region_grid(13, 17, n_win=(2, 3)) == (2, 3)


# ----------------------------------------------------------------------------- rectangular grids
def _reference_bra(x, p, heads, grid, topk, lepe_k):
    """A direct float64 implementation of BRA (identity kv, qkvo) for any (rows, cols) grid:
    zero-pad to whole regions, route each region to its topk regions by window-mean affinity,
    attend to their pixels, add LePE, project, crop. x: (N, H, W, C) numpy."""
    n, h, w, c = x.shape
    nh, nw = grid
    wh, ww = -(-h // nh), -(-w // nw)
    xp = np.zeros((n, nh * wh, nw * ww, c))
    xp[:, :h, :w] = x
    qkv = xp @ p["qkv.qkv.weight"] + p["qkv.qkv.bias"]
    q, k, v = qkv[..., :c], qkv[..., c:2 * c], qkv[..., 2 * c:]
    scale = c ** -0.5
    lepe = np.zeros_like(v)
    vpad = np.pad(v, ((0, 0), (lepe_k // 2,) * 2, (lepe_k // 2,) * 2, (0, 0)))
    for i in range(lepe_k):
        for j in range(lepe_k):
            lepe += vpad[:, i:i + v.shape[1], j:j + v.shape[2]] * p["lepe.weight"][:, 0, i, j]
    lepe += p["lepe.bias"]

    def region(t, r):
        a, b = divmod(r, nw)
        return t[a * wh:(a + 1) * wh, b * ww:(b + 1) * ww].reshape(wh * ww, -1)

    out = np.zeros_like(v)
    ch = c // heads
    for b in range(n):
        qw = np.stack([region(q[b], r).mean(0) for r in range(nh * nw)])
        kw = np.stack([region(k[b], r).mean(0) for r in range(nh * nw)])
        routed = np.argsort(-(qw * scale) @ kw.T, axis=-1, kind="stable")[:, :topk]
        for r in range(nh * nw):
            keys = np.concatenate([region(k[b], s) for s in routed[r]])
            vals = np.concatenate([region(v[b], s) for s in routed[r]])
            qr = region(q[b], r)
            res = np.zeros((wh * ww, c))
            for hd in range(heads):
                sl = slice(hd * ch, (hd + 1) * ch)
                logit = (qr[:, sl] * scale) @ keys[:, sl].T
                a = np.exp(logit - logit.max(-1, keepdims=True))
                res[:, sl] = (a / a.sum(-1, keepdims=True)) @ vals[:, sl]
            i, j = divmod(r, nw)
            out[b, i * wh:(i + 1) * wh, j * ww:(j + 1) * ww] = res.reshape(wh, ww, c)
    out = (out + lepe) @ p["wo.weight"] + p["wo.bias"]
    return out[:, :h, :w]


def test_reference_matches_official_fixture():
    """The direct implementation above reproduces the official auto_pad fixture (square grid)."""
    cases, arrays = load_cases(os.path.join(FIXTURES, "official"))
    case = next(c for c in cases if c["name"] == "bra_autopad")
    prefix = case["name"] + "/"
    state = torch_layouts({k[len(prefix) + 6:]: arrays[k] for k in arrays.files if k.startswith(prefix + "param.")})
    kw = case["kwargs"]
    ref = _reference_bra(arrays[prefix + "input"].astype(np.float64), {k: np.asarray(v, np.float64) for k, v in state.items()},
                         kw["num_heads"], (kw["n_win"], kw["n_win"]), kw["topk"], kw["side_dwconv"])
    assert rel_err(ref, arrays[prefix + "output"]) <= TOL


@pytest.mark.parametrize("shape,kw", [((2, 16, 13, 17), dict(n_win=(2, 3))),
                                      ((1, 16, 13, 17), dict(region_size=(4, 6))),
                                      ((1, 16, 9, 30), dict(region_size=8))])
def test_rectangular_grid_matches_reference(shape, kw):
    m = BRA2d(shape[1], num_heads=2, topk=3, side_dwconv=3, **kw)
    m.eval()
    for p in m.parameters():  # not the initial zero biases
        p.set_value(p + 0.1 * paddle.randn(p.shape))
    x = paddle.randn(shape)
    with paddle.no_grad():
        out = m(x).numpy()
    params = {k: v.numpy().astype(np.float64) for k, v in m.state_dict().items()}
    grid = m.grid(*shape[2:])
    assert grid[0] != grid[1]
    ref = _reference_bra(nhwc(x).numpy().astype(np.float64), params, 2, grid, 3, 3)
    assert rel_err(nchw(paddle.to_tensor(ref)).numpy(), out) <= TOL


# ----------------------------------------------------------------------------- construction errors
@pytest.mark.parametrize("args,kwargs,fix", [
    ((100,), dict(num_heads=8, n_win=7), "nearest valid num_heads: 5 or 10"),
    ((64,), dict(num_heads=8, qk_dim=36, n_win=7), "nearest valid num_heads: 2 or 4"),
    ((64,), dict(num_heads=0, n_win=7), "e.g. num_heads=8"),
    ((64,), dict(topk=0, n_win=7), "must be an int >= 1"),
    ((64,), dict(n_win=7, region_size=8), "give exactly one of n_win"),
    ((64,), dict(), "e.g. region_size=8"),
    ((64,), dict(n_win=0), "n_win=0 must be a positive int"),
    ((64,), dict(region_size=(8, 0)), "region_size=(8, 0) must be a positive int"),
    ((64,), dict(n_win=7, side_dwconv=4), "e.g. side_dwconv=5"),
    ((64,), dict(region_size=2, kv_downsample_mode="avgpool", kv_downsample_ratio=4),
     "use region_size >= 4"),
    ((64,), dict(n_win=7, param_routing=True), "needs diff_routing=True"),
    ((64,), dict(n_win=7, kv_downsample_mode="conv"), "kv_downsample_mode must be one of"),
    ((0,), dict(n_win=7), "channels=0 must be a positive int"),
])
def test_impossible_settings_fail_at_construction_with_the_fix(args, kwargs, fix):
    with pytest.raises(ValueError) as info:
        BRA2d(*args, **kwargs)
    msg = str(info.value)
    assert fix in msg and "\n" not in msg, msg


def test_block_errors_and_runtime_errors():
    with pytest.raises(ValueError, match="norm='group' must be 'layer'"):
        BRABlock2d(32, n_win=7, norm="group")
    with pytest.raises(ValueError, match="nearest valid num_heads"):
        BRABlock2d(30, num_heads=8, n_win=7)
    m = BRA2d(32, n_win=7)
    with pytest.raises(ValueError, match="got 16 channels, built for channels=32"):
        m(paddle.randn([1, 16, 14, 14]))
    pooled = BRA2d(32, n_win=7, kv_downsample_mode="maxpool", kv_downsample_ratio=2)
    with pytest.raises(ValueError, match="smaller than kv_downsample_ratio=2"):
        pooled(paddle.randn([1, 32, 7, 7]))


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("layer", [
    lambda: BRA2d(32, num_heads=4, n_win=7, topk=4),
    lambda: BRA2d(32, num_heads=4, region_size=4, topk=3, param_routing=True, diff_routing=True,
                  soft_routing=True, kv_downsample_mode="ada_avgpool", kv_per_win=2),
    lambda: BRABlock2d(32, num_heads=4, region_size=4, norm="batch", drop_path=0.1, layer_scale_init_value=0.5),
    lambda: BRABlock2d(32, num_heads=4, n_win=3, norm="layer", mlp_dwconv=True),
], ids=["bra2d", "bra2d-diff-routing", "block-bn", "block-ln"])
def test_gradients_reach_input_and_every_parameter(layer):
    m = layer()
    m.train()
    x = paddle.randn([2, 32, 13, 11])
    x.stop_gradient = False
    out = m(x)
    assert list(out.shape) == [2, 32, 13, 11]
    (out * paddle.randn(out.shape)).sum().backward()
    assert np.isfinite(x.grad.numpy()).all() and np.abs(x.grad.numpy()).max() > 0
    for name, p in m.named_parameters():
        if p.stop_gradient:  # BatchNorm statistics
            continue
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), name
        assert np.abs(p.grad.numpy()).max() > 0, name


# ----------------------------------------------------------------------------- mixed precision
def test_auto_cast_on_cpu_computes_float32():
    """Paddle ignores paddle.amp.auto_cast on a CPU (it warns): BRA2d then computes in float32,
    returns float32 and gives exactly the float32 result."""
    m = BRA2d(32, num_heads=4, region_size=4)
    m.eval()
    x = paddle.randn([1, 32, 13, 11])
    with paddle.no_grad():
        ref = m(x)
        with paddle.amp.auto_cast(dtype="bfloat16"):
            assert not ops_module.autocast_enabled()
            out = m(x)
    assert out.dtype == paddle.float32
    np.testing.assert_array_equal(out.numpy(), ref.numpy())


def test_bfloat16_input_without_auto_cast():
    """Without an active auto_cast the layer computes in its parameters' dtype: a bfloat16 map
    into a float32 BRA2d is cast to float32 (the output is float32); BRABlock2d returns the
    input's dtype."""
    m = BRA2d(32, num_heads=4, region_size=4)
    block = BRABlock2d(32, num_heads=4, region_size=4)
    m.eval()
    block.eval()
    x = paddle.randn([1, 32, 9, 10]).astype("bfloat16")
    with paddle.no_grad():
        out, ref = m(x), m(x.astype("float32"))
        out_block = block(x)
    assert out.dtype == paddle.float32
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    assert out_block.dtype == paddle.bfloat16


_BF16_KERNELS = {  # what BRA2d needs in bfloat16; Paddle 3.3.1's CPU build has none of them
    "matmul": lambda t: paddle.matmul(t, t, transpose_y=True),
    "softmax": lambda t: F.softmax(t, -1),
    "pad3d": lambda t: F.pad(t.reshape([1, 2, 2, -1]), [0, 1, 0, 1], data_format="NHWC"),
    "depthwise_conv2d": lambda t: F.conv2d(t.reshape([1, 2, 2, -1]), paddle.ones([4, 1, 1, 1], "bfloat16"),
                                           groups=4, data_format="NHWC"),
    "add": lambda t: t + t,
}


def _missing_bf16_cpu_kernels():
    missing = []
    for name, fn in _BF16_KERNELS.items():
        try:
            fn(paddle.ones([4, 4], "bfloat16"))
        except Exception:
            missing.append(name)
    return missing


def test_bfloat16_model_on_cpu_where_paddle_allows():
    """A BRA2d cast to bfloat16 (AMP O2 style). Runs where Paddle has the bfloat16 kernels;
    on Paddle 3.3.1's CPU build (no bfloat16 matmul, softmax, pad3d, depthwise_conv2d, add,
    topk, mean, conv2d, pool2d, layer_norm, batch_norm) it is skipped with the list, and the
    float32-routing code path is checked by the emulation test below instead."""
    missing = _missing_bf16_cpu_kernels()
    if missing:
        pytest.skip(f"Paddle {paddle.__version__} CPU has no bfloat16 kernel for: {', '.join(missing)}")
    m = BRA2d(32, num_heads=4, region_size=4)
    m.eval()
    x = paddle.randn([1, 32, 9, 10])
    with paddle.no_grad():
        ref = m(x).numpy()
        m.to(dtype="bfloat16")
        out = m(x.astype("bfloat16"))
    assert out.dtype == paddle.bfloat16
    assert rel_err(out.astype("float32").numpy(), ref) <= 5e-2


def test_mixed_precision_path_emulated_with_float64(monkeypatch):
    """The low-precision code path, run on a CPU by treating float64 as the low precision: the
    routing (window means, logits, top-k, softmax) must run in float32, the attention softmax
    in float32, everything else and the output in the model's dtype; gradients flow through
    the casts. Same results as float32 to float32 rounding."""
    low = lambda dtype: dtype in (paddle.float16, paddle.bfloat16, paddle.float64)  # noqa: E731
    m = BRA2d(32, num_heads=4, region_size=4, topk=3, param_routing=True, diff_routing=True, soft_routing=True)
    m.eval()
    x = paddle.randn([2, 32, 9, 10])
    ref = m(x).numpy()
    monkeypatch.setattr(bra_module, "is_low_precision", low)
    monkeypatch.setattr(ops_module, "is_low_precision", low)
    softmax_dtypes, softmax = [], F.softmax  # F.softmax: also what nn.Softmax (the router's) calls
    monkeypatch.setattr(F, "softmax", lambda t, *a, **k: (softmax_dtypes.append(t.dtype), softmax(t, *a, **k))[1])
    router_inputs = []
    hook = m.router.register_forward_pre_hook(lambda layer, inputs: router_inputs.append(inputs))
    m.to(dtype="float64")
    x.stop_gradient = False  # float32 in: cast to the layer's dtype
    out, r_weight, _, _ = m(x, ret_attn_mask=True)
    hook.remove()
    assert out.dtype == paddle.float64
    assert r_weight.dtype == paddle.float32
    assert all(t.dtype == paddle.float32 for t in router_inputs[0])
    assert softmax_dtypes == [paddle.float32, paddle.float32]  # routing, then attention
    assert rel_err(out.numpy(), ref) <= 1e-5
    out.sum().backward()
    assert x.grad.dtype == paddle.float32 and np.isfinite(x.grad.numpy()).all()
    assert m.router.emb.weight.grad is not None  # diff_routing: through the float32 routing


# ----------------------------------------------------------------------------- export
class _SmallCNN(nn.Layer):
    """A stem conv, a BRA2d (fixed grid that does not divide the map) and a BRABlock2d
    (region_size, BatchNorm), pooled into a classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2D(3, 32, 3, stride=2, padding=1)
        self.bra = BRA2d(32, num_heads=4, n_win=7, topk=4)
        self.block = BRABlock2d(32, num_heads=4, region_size=4, topk=3, norm="batch")
        self.head = nn.Linear(32, 5)
        self.num_classes, self.in_chans = 5, 3

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = x + self.bra(x)
        return self.head(self.block(x).mean(axis=[2, 3]))


def test_export_to_paddle_inference_matches_dynamic_graph(tmp_path):
    """paddle.jit.to_static + paddle.jit.save of a small CNN with BRA2d on a 26x34 input
    (13x17 maps: padded, rectangular region grid), run by Paddle Inference (oneDNN) and, where
    paddle2onnx and onnxruntime are installed, ONNX Runtime: within 1e-4 of the dynamic graph.
    (Both runtimes got the zero padding wrong from a pad op; ops.pad_nhwc avoids it.)"""
    from paddle.static import InputSpec

    from paddle_biformer.export import export_onnx, onnx_runner, paddle_inference_runner

    model = _SmallCNN()
    model.eval()
    for p in model.parameters():
        p.set_value(p + 0.05 * paddle.randn(p.shape))
    static = paddle.jit.to_static(model, input_spec=[InputSpec([None, 3, 26, 34], "float32", "image")],
                                  full_graph=True)
    prefix = str(tmp_path / "model")
    paddle.jit.save(static, prefix)
    model_file = next(f for f in glob.glob(prefix + ".*") if f.endswith((".json", ".pdmodel")))
    runners = {"paddle_inference": paddle_inference_runner(model_file, prefix + ".pdiparams")}
    try:
        import onnxruntime  # noqa: F401
        import paddle2onnx  # noqa: F401
    except ImportError:
        pass
    else:
        runners["onnx"] = onnx_runner(export_onnx(model_file, prefix + ".pdiparams", prefix + ".onnx"))
    for batch in (1, 3):
        images = np.random.default_rng(batch).standard_normal((batch, 3, 26, 34)).astype("float32")
        with paddle.no_grad():
            ref = model(paddle.to_tensor(images)).numpy()
        for name, run in runners.items():
            for _ in range(2):
                got = run(images)
                assert got.shape == ref.shape, name
                assert np.abs(got - ref).max() <= 1e-4, (name, np.abs(got - ref).max())
