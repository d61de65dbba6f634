"""The functional building blocks: the C++ depthwise convolution and the routed gather."""
import os
import subprocess
import sys

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from conftest import ROOT

from paddle_biformer._ext import cpu_kernels
from paddle_biformer.ops import (conv2d_nhwc, depthwise_conv2d_nhwc, gather_windows, permute, routed_rows,
                                 window_mean)


@pytest.mark.parametrize("shape,k", [((2, 9, 11, 16), 3), ((1, 14, 14, 37), 5), ((3, 5, 6, 8), 7),
                                     ((2, 8, 8, 64), 5)])
def test_depthwise_conv_matches_paddle_conv(shape, k):
    """Forward and all gradients of the NHWC depthwise conv against Paddle's conv2d."""
    c = shape[-1]
    x = paddle.randn(shape)
    w = paddle.randn([c, 1, k, k]) * 0.2
    b = paddle.randn([c])
    g = paddle.randn(shape)
    results = []
    for fn in (lambda x, w, b: depthwise_conv2d_nhwc(x, w, b, k // 2),
               lambda x, w, b: F.conv2d(x, w, b, padding=k // 2, groups=c, data_format="NHWC")):
        xs, ws, bs = (t.detach() for t in (x, w, b))
        for t in (xs, ws, bs):
            t.stop_gradient = False
        out = fn(xs, ws, bs)
        (out * g).sum().backward()
        results.append([out.numpy(), xs.grad.numpy(), ws.grad.numpy(), bs.grad.numpy()])
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape,cout,k,stride,pad", [((2, 9, 11, 3), 8, 3, 2, 1), ((1, 8, 8, 16), 32, 3, 2, 1),
                                                    ((2, 7, 6, 5), 4, 3, 1, 1), ((1, 10, 9, 4), 6, 5, 3, 2)])
def test_dense_conv_matches_paddle_conv(shape, cout, k, stride, pad):
    """im2col + matmul convolution: forward and gradients against Paddle's conv2d."""
    x, w, b = paddle.randn(shape), paddle.randn([cout, shape[-1], k, k]) * 0.2, paddle.randn([cout])
    results = []
    for fn in (lambda x, w, b: conv2d_nhwc(x, w, b, stride, pad),
               lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=pad, data_format="NHWC")):
        xs, ws, bs = (t.detach() for t in (x, w, b))
        for t in (xs, ws, bs):
            t.stop_gradient = False
        out = fn(xs, ws, bs)
        (out * paddle.ones_like(out).cumsum(-1)).sum().backward()
        results.append([out.numpy(), xs.grad.numpy(), ws.grad.numpy(), bs.grad.numpy()])
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_depthwise_conv_accepts_non_contiguous_input():
    x = paddle.randn([2, 16, 10, 12]).transpose([0, 2, 3, 1])  # a transposed view
    w, b = paddle.randn([16, 1, 3, 3]), paddle.randn([16])
    ref = F.conv2d(x.contiguous() if hasattr(x, "contiguous") else x, w, b, padding=1, groups=16,
                   data_format="NHWC")
    np.testing.assert_allclose(depthwise_conv2d_nhwc(x, w, b, 1).numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)


def test_cpu_kernel_is_built_here():
    """CI has a compiler: the fast path must be the one tested."""
    assert cpu_kernels() is not None


def test_fallback_without_the_cpu_kernel_gives_the_same_result(tmp_path):
    code = ("import numpy as np, paddle; paddle.seed(0)\n"
            "from paddle_biformer import create_model\n"
            "m = create_model('biformer_tiny', num_classes=3, img_size=32, depth=[1, 1, 1, 1]); m.eval()\n"
            "np.save(r'%s', m(paddle.randn([2, 3, 32, 32])).numpy())\n")
    outs = []
    for flag in ("0", "1"):
        path = tmp_path / f"out{flag}.npy"
        env = dict(os.environ, PADDLE_BIFORMER_NO_EXT=flag, PYTHONPATH=ROOT)
        subprocess.run([sys.executable, "-c", code % path], env=env, check=True, capture_output=True)
        outs.append(np.load(path))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_gather_windows_equals_the_official_expand_gather(weighted):
    n, p2, topk, w2, c = 2, 9, 3, 4, 5
    kv = np.random.randn(n, p2, w2, c).astype("float32")
    r_idx = np.stack([np.stack([np.random.permutation(p2)[:topk] for _ in range(p2)]) for _ in range(n)])
    r_w = np.random.rand(n, p2, topk).astype("float32")
    # official: expand to (n, p2, p2, w2, c) and gather along axis 2
    ref = np.take_along_axis(np.broadcast_to(kv[:, None], (n, p2, p2, w2, c)),
                             r_idx[:, :, :, None, None], axis=2)
    if weighted:
        ref = ref * r_w[..., None, None]
    x = paddle.to_tensor(kv.reshape(n * p2, w2, c))
    x.stop_gradient = False
    out = gather_windows(x, paddle.to_tensor(r_idx), r_weight=paddle.to_tensor(r_w) if weighted else None)
    np.testing.assert_allclose(out.numpy().reshape(ref.shape), ref, rtol=1e-6)
    # backward: every window's gradient is the sum over the query windows that chose it
    out.sum().backward()
    counts = np.zeros((n, p2), dtype="float32")
    for b in range(n):
        for q in range(p2):
            for j in range(topk):
                counts[b, r_idx[b, q, j]] += r_w[b, q, j] if weighted else 1.0
    np.testing.assert_allclose(x.grad.numpy().reshape(n, p2, w2, c)[..., 0, 0], counts, rtol=1e-5)


def test_gather_windows_per_head_with_repeated_indices():
    """Heads first (m * N * p2, L, c); repeated indices must accumulate gradients (Paddle 2.6's
    gather backward gets this wrong along axes other than 0, so we only gather along axis 0)."""
    x = paddle.randn([3 * 8, 2, 4])  # 3 heads, n=2 images x p2=4 windows
    x.stop_gradient = False
    r_idx = paddle.to_tensor(np.array([[[0, 0], [3, 1], [3, 3], [2, 0]]] * 2))  # n=2, p2=4, topk=2
    out = gather_windows(x, r_idx, heads=3)
    assert out.shape == [3 * 16, 2, 4]
    # head 1, image 1, query window 1, k=0 -> window 3 of image 1 in head 1
    np.testing.assert_array_equal(out.numpy()[16 + 8 + 2], x.numpy()[8 + 4 + 3])
    out.sum().backward()
    assert x.grad.numpy()[:8, 0, 0].tolist() == [3, 1, 1, 3, 3, 1, 1, 3]
    np.testing.assert_array_equal(routed_rows(r_idx, 3).numpy()[16:18], [8 + 0, 8 + 0])


def test_window_mean_and_its_gradient():
    x = paddle.randn([2, 6, 8, 5])
    x.stop_gradient = False
    out = window_mean(x, 2)
    ref = x.numpy().reshape(2, 2, 3, 2, 4, 5).mean(axis=(2, 4)).reshape(2, 4, 5)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-6)
    (out * paddle.arange(40, dtype="float32").reshape([1, 4, 10])[:, :, :5]).sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[0, 4, 6], np.arange(30, 35) / 12.0, rtol=1e-6)


def test_depthwise_conv_of_a_channel_range_with_residual():
    """LePE reads V out of the fused qkv tensor; pos_embed adds its input."""
    x = paddle.randn([2, 6, 7, 12])
    w, b = paddle.randn([4, 1, 3, 3]), paddle.randn([4])
    x.stop_gradient = False
    out = depthwise_conv2d_nhwc(x, w, b, 1, channel_offset=8, residual=True)
    part = paddle.to_tensor(x.numpy()[..., 8:])
    ref = F.conv2d(part, w, b, padding=1, groups=4, data_format="NHWC") + part
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert np.all(x.grad.numpy()[..., :8] == 0)
    centre = 1 + w.numpy().reshape(4, 9).sum(1)  # residual + every tap, away from the border
    np.testing.assert_allclose(x.grad.numpy()[0, 2, 3, 8:], centre, rtol=1e-5)


def test_permute_matches_transpose_forward_and_backward():
    x = paddle.randn([2, 3, 4, 5, 6])
    x.stop_gradient = False
    perm = [3, 0, 4, 2, 1]
    out = permute(x, perm)
    np.testing.assert_array_equal(out.numpy(), x.numpy().transpose(perm))
    (out * paddle.to_tensor(np.arange(out.size, dtype="float32").reshape(out.shape))).sum().backward()
    ref = np.arange(out.size, dtype="float32").reshape(out.shape).transpose(np.argsort(perm))
    np.testing.assert_array_equal(x.grad.numpy(), ref)
