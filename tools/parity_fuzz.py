"""Fuzz paddle_biformer against the official PyTorch BiFormer on random configurations.

    python tools/parity_fuzz.py make --torch-ref /path/to/BiFormer --out DIR --n 300 --seed 0  # torch
    python tools/parity_fuzz.py check DIR                                                      # paddle
    python tools/parity_fuzz.py run --torch-ref /path/to/BiFormer --n 300 --seed 0             # both

`make` writes DIR/modules.json and DIR/modules.npz in the format of the official-reference
fixtures (shared/fixtures/biformer_official/README.md): per case `name`, `kind` (bra, attention,
attention_lepe, block, biformer), official constructor `kwargs`, `input_shape`, `layout`, and
under `<name>/`: input, output (biformer: logits), cotangent, grad.input, grad.<param>,
param.<state dict entry>; bra cases also hold r_weight, r_idx and attn (ret_attn_mask=True).
Everything is float32 in eval mode; parameters are perturbed randomly and BatchNorm gets random
running statistics, so no layer is an identity. Configurations the official code rejects are
skipped and counted. `check` passes a case when, for the output, the routing results and every
gradient of sum(output * cotangent), max|ours - ref| <= 1e-4 * max(1, max|ref|); r_idx must
match exactly, except between windows of equal routing logit (ties, e.g. all-padding windows).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import tempfile
import time

import numpy as np

TOL = 1e-4
KV_MODES = ["identity", "ada_avgpool", "ada_maxpool", "avgpool", "maxpool"]
# kinds in turn, so that every kind appears even in a short run
KIND_CYCLE = ["bra", "block", "bra", "biformer", "attention", "bra", "block", "attention_lepe",
              "bra", "block"]


def layer_class(module, kind):
    """The class for `kind` in the official code or ours (both use the official names)."""
    return getattr(module, {"bra": "BiLevelRoutingAttention", "attention": "Attention",
                            "attention_lepe": "AttentionLePE", "block": "Block",
                            "biformer": "BiFormer"}[kind])


# ----------------------------------------------------------------------------- configurations
def routing_options(r, kw):
    """Routing flags (mostly valid combinations, sometimes ones the official code rejects) and
    sometimes qk_scale."""
    param, diff, soft = r.choice([(False, False, False)] * 6 + [(False, False, True),
                                 (False, True, True), (True, True, True), (True, True, True),
                                 (False, True, False), (True, False, False)])
    kw.update(param_routing=param, diff_routing=diff, soft_routing=soft)
    if r.random() < 0.3:
        kw["qk_scale"] = round(r.uniform(0.05, 0.6), 4)


def kv_downsample_options(r, kw):
    """kv_downsample_mode and its argument (kv_per_win or kv_downsample_ratio)."""
    mode = kw["kv_downsample_mode"] = r.choice(KV_MODES)
    if mode.startswith("ada_"):
        kw["kv_per_win"] = r.randint(1, 3)
    elif mode != "identity":
        kw["kv_downsample_ratio"] = r.choice([1, 2, 2, 3])


def gen_bra(r, small):
    """BiLevelRoutingAttention kwargs and NHWC input shape."""
    n_win = r.randint(1, 4 if small else 8)
    heads = r.choice([1, 2, 4, 8] if not small else [1, 2, 4])
    dim = heads * r.choice([2, 4, 8] if small else [2, 4, 8, 16])
    qk_dim = r.choice([None, dim, heads * r.choice([1, 2, 4, 8])])
    topk_max = n_win * n_win + (1 if r.random() < 0.03 else 0)  # n_win^2 + 1: rejected officially
    kw = dict(dim=dim, num_heads=heads, n_win=n_win, qk_dim=qk_dim, topk=r.randint(1, topk_max),
              param_attention=r.choice(["qkvo", "qkv"]),
              side_dwconv=r.choice([0, 3, 5, 7] * 8 + [2]))  # even kernels: rejected officially
    kv_downsample_options(r, kw)
    routing_options(r, kw)
    wh, ww = r.randint(1, 3 if small else 4), r.randint(1, 3 if small else 4)
    ratio = kw.get("kv_downsample_ratio", 1)
    if r.random() < 0.8:  # pooling windows of at least `ratio` (smaller ones are rejected)
        wh, ww = max(wh, ratio), max(ww, ratio)
    h, w = n_win * wh, n_win * ww
    if r.random() < 0.35:
        kw["auto_pad"] = True
        h, w = r.randint(1, h + n_win - 1), r.randint(1, w + n_win - 1)
    return kw, [r.randint(1, 2 if small else 3), h, w, dim]


def gen_attention(r, small, lepe):
    """Attention / AttentionLePE kwargs and NHWC input shape."""
    heads = r.choice([1, 2, 4, 8])
    kw = dict(dim=heads * r.choice([2, 4, 8]), num_heads=heads, qkv_bias=r.random() < 0.5)
    if r.random() < 0.3:
        kw["qk_scale"] = round(r.uniform(0.05, 0.6), 4)
    if r.random() < 0.2:
        kw.update(attn_drop=0.1, proj_drop=0.1)  # eval mode: must have no effect
    if lepe:
        kw["side_dwconv"] = r.choice([0, 3, 5, 7])
    return kw, [r.randint(1, 2 if small else 3), r.randint(1, 6 if small else 9),
                r.randint(1, 6 if small else 9), kw["dim"]]


def gen_block(r, small):
    """Block kwargs and NCHW input shape (dim >= 8); topk > 0 uses a random BRA configuration."""
    kw, (n, h, w, dim) = gen_bra(r, small)
    kw["topk"] = r.choice([kw["topk"]] * 5 + [0, -1, -2])
    if kw["topk"] <= 0:  # topk -1/-2: the official attention has 8 heads
        kw["dim"] = dim = r.choice([8, 16, 24, 32]) if kw["topk"] < 0 else dim
        h, w = r.randint(1, 8), r.randint(1, 8)
    if dim < 8:  # LayerNorm over < 8 channels is too ill-conditioned for a 1e-4 float32 check
        kw["dim"] = dim = 8 * kw["num_heads"]
    kw.update(mlp_ratio=r.choice([2, 3, 4, 2.5]), mlp_dwconv=r.random() < 0.4,
              before_attn_dwconv=r.choice([3, 3, 3, 0, 5]),  # 5: rejected (official padding=1)
              pre_norm=r.random() < 0.7,
              layer_scale_init_value=r.choice([-1, -1, 0.5, 1e-2]))
    if r.random() < 0.15:
        kw["drop_path"] = 0.2  # eval mode: must have no effect
    return kw, [n, dim, h, w]


def gen_biformer(r, small):
    """A tiny BiFormer: kwargs and NCHW image shape the official code accepts (mostly)."""
    n_win = r.randint(1, 3 if small else 4)
    head_dim = r.choice([8, 16])
    dims = [16, 24, 32] if small else [16, 24, 32, 48, 64]
    embed = [r.choice([d for d in dims if d % head_dim == 0]) for _ in range(4)]
    depth = [r.choice([1] * 6 + [0, 2]) for _ in range(4)]
    topks = [r.choice(list(range(1, n_win * n_win + 1)) * 2 + [0, -1, -2]) for _ in range(4)]
    kw = dict(depth=depth, in_chans=r.choice([1, 3, 4]), num_classes=r.randint(2, 10),
              embed_dim=embed, head_dim=head_dim, n_win=n_win, topks=topks,
              qk_dims=[head_dim * r.choice([k for k in range(1, e // head_dim + 1) if e % k == 0])
                       for e in embed],
              kv_per_wins=[r.randint(1, 2) for _ in range(4)],
              kv_downsample_ratios=[r.randint(1, 2) for _ in range(4)],
              mlp_ratios=[r.choice([2, 3, 4]) for _ in range(4)],
              side_dwconv=r.choice([0, 3, 5]), before_attn_dwconv=r.choice([3, 3, 0]),
              layer_scale_init_value=r.choice([-1, -1, 0.5]), pre_norm=r.random() < 0.7,
              mlp_dwconv=r.random() < 0.4, param_attention=r.choice(["qkvo", "qkv"]),
              kv_downsample_mode=r.choice(KV_MODES), auto_pad=r.random() < 0.4)
    routing_options(r, kw)
    if r.random() < 0.2:
        kw.update(drop_path_rate=0.1, use_checkpoint_stages=[0, 2])  # no effect in eval mode
    if kw["auto_pad"]:
        h, w = r.randint(9, 72), r.randint(9, 72)
    else:  # feature maps of routing stages must be multiples of n_win
        last = max([i for i in range(4) if topks[i] > 0 and depth[i]], default=-1)
        unit = 2 ** (last + 2) * n_win if last >= 0 else 4
        top = max(1, (64 if small else 128) // unit)
        h, w = unit * r.randint(1, top), unit * r.randint(1, top)
    return kw, [r.randint(1, 2), kw["in_chans"], h, w]


def attn_elems(kind, kw, shape):
    """Rough size of the largest intermediate (BRA attention matrix, or input)."""
    numel = int(np.prod(shape))
    if kind not in ("bra", "block") or kw["topk"] <= 0:
        return numel * (shape[1] * shape[2] if kind.startswith("attention") else 1)
    n, h, w = (shape[0], shape[1], shape[2]) if kind == "bra" else (shape[0], shape[2], shape[3])
    nw = kw["n_win"]
    wh, ww = -(-h // nw), -(-w // nw)
    mode = kw["kv_downsample_mode"]
    kv = kw["kv_per_win"] ** 2 if mode.startswith("ada_") else \
        wh * ww // (kw["kv_downsample_ratio"] ** 2 if mode != "identity" else 1)
    return n * kw["num_heads"] * nw * nw * wh * ww * kw["topk"] * max(kv, 1)


def gen_case(kind, r, small):
    """kwargs and input shape for `kind`, redrawn until its attention matrix is moderate."""
    cap = 40_000 if small else 400_000
    gen = {"bra": gen_bra, "block": gen_block, "biformer": gen_biformer,
           "attention": lambda r, s: gen_attention(r, s, False),
           "attention_lepe": lambda r, s: gen_attention(r, s, True)}[kind]
    while True:
        kw, shape = gen(r, small)
        if kind == "biformer" or attn_elems(kind, kw, shape) <= cap:
            return kw, shape


# ----------------------------------------------------------------------------- torch side
def randomize_(model, torch, gen):
    """Perturb every parameter; give BatchNorm random running statistics."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))


def run_official(ref, torch, case, seed):
    """Build the official layer for `case`, run forward + backward; the arrays to store."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = layer_class(ref, case["kind"])(**case["kwargs"]).float().eval()
    randomize_(model, torch, gen)
    x = torch.randn(case["input_shape"], generator=gen).requires_grad_(True)
    arrays = {"input": x.detach().numpy().copy()}
    if case["kind"] == "bra":
        out, r_weight, r_idx, attn = model(x, ret_attn_mask=True)
        arrays.update(r_weight=r_weight.detach().numpy(), r_idx=r_idx.numpy(),
                      attn=attn.detach().numpy())
    else:
        out = model(x)
    cot = torch.randn(out.shape, generator=gen)
    (out * cot).sum().backward()
    arrays.update(output=out.detach().numpy(), cotangent=cot.numpy(), **{"grad.input": x.grad.numpy()})
    for k, p in model.named_parameters():
        arrays["grad." + k] = (p.grad if p.grad is not None else torch.zeros_like(p)).numpy()
    for k, v in model.state_dict().items():
        arrays["param." + k] = v.detach().numpy()
    if not all(np.isfinite(v).all() for v in arrays.values()):
        raise FloatingPointError("non-finite values")
    return arrays


def make(torch_ref, out_dir, n, seed, small=False):
    """Write n cases that the official code accepts to out_dir; returns the skip counts."""
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from official_ref import load_official
    ref = load_official(torch_ref)
    cases, arrays, skipped, attempt = [], {}, collections.Counter(), 0
    while len(cases) < n:
        kind = KIND_CYCLE[len(cases) % len(KIND_CYCLE)]
        case_seed = seed * 1_000_003 + attempt
        attempt += 1
        kw, shape = gen_case(kind, random.Random(case_seed), small)
        case = dict(name=f"{len(cases):04d}_{kind}", kind=kind, kwargs=kw, input_shape=shape,
                    layout="NCHW" if kind in ("block", "biformer") else "NHWC")
        try:
            result = run_official(ref, torch, case, case_seed)
        except Exception as e:  # the official code rejects this configuration
            skipped[f"{kind}: {type(e).__name__}"] += 1
            continue
        cases.append(case)
        arrays.update({f"{case['name']}/{k}": v for k, v in result.items()})
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "modules.json"), "w") as f:
        json.dump(cases, f, indent=1)
    np.savez_compressed(os.path.join(out_dir, "modules.npz"), **arrays)
    print(f"made {len(cases)} cases in {out_dir}; skipped {sum(skipped.values())} "
          f"configurations the official code rejects: {dict(skipped)}")
    return skipped


# ----------------------------------------------------------------------------- paddle side
def rel_err(ours, ref):
    """max|ours - ref| / max(1, max|ref|)."""
    ref = np.asarray(ref, np.float64)
    if np.shape(ours) != ref.shape:
        return float("inf")
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    return float(np.abs(np.asarray(ours, np.float64) - ref).max(initial=0.0)) / scale


def routing_mismatches(router, inputs, ours, ref):
    """(real, near_ties): routed windows that differ from the reference. A near-tie is a window
    chosen instead of another whose routing logit is equal up to float32 rounding (1e-6
    relative): all-padding windows, or two windows that the k-th place cannot separate. At a
    near-tie both choices are right, and the outputs then legitimately differ."""
    import paddle
    if ours.shape != ref.shape:
        return float("inf"), 0
    with paddle.no_grad():
        query, key = (router.emb(t) for t in inputs)
        logit = paddle.matmul(query * router.scale, key, transpose_y=True).numpy()
    tie_tol = 1e-6 * max(1.0, float(np.abs(logit).max()))
    gap = np.abs(np.take_along_axis(logit, ours, -1) - np.take_along_axis(logit, ref, -1))
    chosen_differently = np.sort(ours, -1) != np.sort(ref, -1)
    real = float(((ours != ref) & (gap > tie_tol)).sum())
    return real, int(chosen_differently.any(-1).sum())


def in_reference_order(attn, ours, ref):
    """Our attention weights (N*p2, heads, w2, topk*kv_w2) with the routed windows' column
    blocks put in the reference's order (tied windows may come in another order; the set is
    what matters). Unchanged where the sets of windows differ (near-ties)."""
    n, p2, topk = ours.shape
    blocks = attn.reshape(n, p2, attn.shape[1], attn.shape[2], topk, -1)
    rank_in_ref = np.argsort(np.argsort(ref, -1), -1)
    order = np.take_along_axis(np.argsort(ours, -1), rank_in_ref, -1)  # our position of ref[j]
    same_set = (np.sort(ours, -1) == np.sort(ref, -1)).all(-1)
    order = np.where(same_set[..., None], order, np.arange(topk))
    reordered = np.take_along_axis(blocks, order[:, :, None, None, :, None], axis=4)
    return reordered.reshape(attn.shape)


def max_pool_near_ties(run, rel=1e-5):
    """Run `run()` recording every max-pool input (kv_downsample_mode 'maxpool'/'ada_maxpool');
    return how many pooling windows hold a near-tie: a runner-up within `rel` (relative to the
    input's scale) of the maximum. Float32 differences between two implementations of the layers
    before a pool can swap such a pair, which moves the gradient to the other element."""
    import paddle.nn.functional as F
    import paddle_biformer.bra as bra
    seen = []
    originals = {name: getattr(F, name) for name in ("max_pool2d", "adaptive_max_pool2d")}

    def recorder(fn):
        def wrapped(x, size, *args, **kwargs):
            seen.append((x.numpy().copy(), fn, size, args, kwargs))
            return fn(x, size, *args, **kwargs)
        return wrapped
    for name, fn in originals.items():
        setattr(bra.F, name, recorder(fn))
    try:
        result = run()
    finally:
        for name, fn in originals.items():
            setattr(bra.F, name, fn)
    ties = 0
    for x, fn, size, args, kwargs in seen:
        layout = kwargs.get("data_format", "NCHW")
        x = x if layout == "NCHW" else x.transpose(0, 3, 1, 2)
        h, w = x.shape[2:]
        out = np.asarray(size if isinstance(size, (list, tuple)) else (size, size))
        if fn is originals["max_pool2d"]:  # kernel = stride = size
            out = np.array([h // out[0], w // out[1]])
            bins = [[(i * h // out[0], (i + 1) * h // out[0]) for i in range(out[0])],
                    [(j * w // out[1], (j + 1) * w // out[1]) for j in range(out[1])]]
        else:  # adaptive bins, as PyTorch and Paddle define them
            bins = [[(i * n // o, -(-(i + 1) * n // o)) for i in range(o)] for n, o in ((h, out[0]), (w, out[1]))]
        scale = max(1e-30, float(np.abs(x).max()))
        for h0, h1 in bins[0]:
            for w0, w1 in bins[1]:
                block = np.sort(x[:, :, h0:h1, w0:w1].reshape(x.shape[0], x.shape[1], -1), -1)
                if block.shape[-1] > 1:
                    ties += int(((block[..., -1] - block[..., -2]) < rel * scale).sum())
    return result, ties


def check_case(case, data):
    """Errors of our layer against one stored case: {quantity: relative error}."""
    import paddle
    import paddle_biformer as pb
    get = lambda key: data[f"{case['name']}/{key}"]  # noqa: E731
    stored = [k.split("/", 1)[1] for k in data.files if k.startswith(case["name"] + "/")]
    model = layer_class(pb, case["kind"])(**case["kwargs"])
    model.eval()
    state = pb.torch_layouts({k[6:]: get(k) for k in stored if k.startswith("param.")})
    ours = set(model.state_dict())
    if ours != set(state):
        return {f"state dict: missing {sorted(ours - set(state))}, "
                f"unexpected {sorted(set(state) - ours)}": float("inf")}
    model.set_state_dict(state)
    x = paddle.to_tensor(get("input"))
    x.stop_gradient = False
    errors = {}
    uses_max_pool = "maxpool" in json.dumps(case["kwargs"])
    if uses_max_pool:
        pool_ties = max_pool_near_ties(lambda: model(x))[1]
        if pool_ties:
            errors["pool_near_ties"] = pool_ties
    if case["kind"] == "bra" and "r_idx" in stored:
        routed = []  # the router's inputs, to tell ties apart from real routing differences
        hook = model.router.register_forward_pre_hook(lambda layer, inputs: routed.append(inputs))
        out, r_weight, r_idx, attn = model(x, ret_attn_mask=True)
        hook.remove()
        errors["r_weight"] = rel_err(r_weight.numpy(), get("r_weight"))
        errors["r_idx"], near_ties = routing_mismatches(model.router, routed[0], r_idx.numpy(), get("r_idx"))
        if near_ties:  # another equally valid routing: outputs may differ, routing must not
            errors["near_ties"] = near_ties
        errors["attn"] = rel_err(in_reference_order(attn.numpy(), r_idx.numpy(), get("r_idx")),
                                 get("attn"))
    else:
        out = model(x)
    errors["output"] = rel_err(out.numpy(), get("output"))
    (out * paddle.to_tensor(get("cotangent"))).sum().backward()
    errors["grad.input"] = rel_err(x.grad.numpy(), get("grad.input"))
    grads = {k: (p.grad.numpy() if p.grad is not None else np.zeros(p.shape, "float32"))
             for k, p in model.named_parameters() if not p.stop_gradient}  # not BN statistics
    ref_grads = pb.torch_layouts({k[5:]: get(k) for k in stored
                                       if k.startswith("grad.") and k != "grad.input"})
    if set(grads) != set(ref_grads):
        errors[f"gradient names differ: {sorted(set(grads) ^ set(ref_grads))}"] = float("inf")
    for k in set(grads) & set(ref_grads):
        errors["grad." + k] = rel_err(grads[k], ref_grads[k])
    return errors


def failures(errors):
    """The entries of `errors` over the tolerance (r_idx: any real routing difference). Where the
    routing went another equally valid way at a near-tie, differing outputs are not failures;
    the routing itself (r_idx, r_weight) still must match."""
    bad = {k: v for k, v in errors.items()
           if k not in ("near_ties", "pool_near_ties") and (v > 0 if k == "r_idx" else v > TOL)}
    if errors.get("near_ties"):
        bad = {k: v for k, v in bad.items() if k in ("r_idx", "r_weight")}
    if errors.get("pool_near_ties"):  # the forward is continuous at a max-pool tie, its gradient not
        bad = {k: v for k, v in bad.items() if not k.startswith("grad.")}
    return bad


def outputs_differ_at_near_tie(errors) -> bool:
    """True if results differ only because a float32 near-tie went the other way: a routing
    top-k tie (outputs may differ) or a max-pool tie (gradients may differ)."""
    if errors.get("near_ties"):
        skip = ("r_idx", "r_weight", "near_ties", "pool_near_ties")
        return any(v > TOL for k, v in errors.items() if k not in skip)
    return bool(errors.get("pool_near_ties")) and any(
        v > TOL for k, v in errors.items() if k.startswith("grad."))


def check(case_dir, verbose=True):
    """Check every case in case_dir; print one line each and a summary; True if all pass."""
    import paddle
    with open(os.path.join(case_dir, "modules.json")) as f:
        cases = json.load(f)
    data = np.load(os.path.join(case_dir, "modules.npz"))
    failed, tied, worst, t0 = [], [], 0.0, time.time()
    for case in cases:
        try:
            errors = check_case(case, data)
        except Exception as e:  # our layer rejects or crashes on a configuration the official runs
            errors = {f"{type(e).__name__}: {(str(e) or ' ').splitlines()[0]}": float("inf")}
        bad = failures(errors)
        if outputs_differ_at_near_tie(errors):
            tied.append(case["name"])
        else:
            worst = max([worst] + [v for k, v in errors.items() if k not in ("r_idx", "near_ties", "pool_near_ties")])
        failed += [case["name"]] if bad else []
        if verbose or bad:
            grad = max([v for k, v in errors.items() if k.startswith("grad.")], default=np.nan)
            print(f"{case['name']:20s} out {errors.get('output', np.nan):.1e} grad {grad:.1e}  "
                  + ("FAIL " + ", ".join(f"{k}={v:.2e}" for k, v in sorted(bad.items())) if bad
                     else "OK (float32 near-tie: outputs or gradients differ)" if outputs_differ_at_near_tie(errors)
                     else "OK"))
        if bad:
            print(f"    kwargs={json.dumps(case['kwargs'])} input_shape={case['input_shape']}")
    print(f"paddle {paddle.__version__}: {len(cases)} cases, {len(cases) - len(failed)} passed, "
          f"{len(failed)} failed; worst relative error {worst:.2e} (tolerance {TOL:g}); "
          f"{len(tied)} took the other branch of a float32 near-tie in routing top-k or max pooling "
          f"(outputs / gradients then differ; routing and outputs still checked); "
          f"{time.time() - t0:.0f}s" + ("\nfailed: " + " ".join(failed) if failed else ""))
    return not failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("make", "run"):
        p = sub.add_parser(name, help="build random cases with the official code"
                           + (" and check them" if name == "run" else ""))
        p.add_argument("--torch-ref", required=True, help="folder of the official BiFormer clone")
        p.add_argument("--out", required=(name == "make"), help="folder for modules.json/.npz")
        p.add_argument("--n", type=int, default=100, help="number of cases (default 100)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--small", action="store_true", help="smaller shapes (for test fixtures)")
    p = sub.add_parser("check", help="compare our layers with the cases in a folder")
    p.add_argument("dir")
    p.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    args = parser.parse_args(argv)
    if args.cmd == "make":
        make(args.torch_ref, args.out, args.n, args.seed, args.small)
        return 0
    if args.cmd == "check":
        return 0 if check(args.dir, verbose=not args.quiet) else 1
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        make(args.torch_ref, out, args.n, args.seed, args.small)
        return 0 if check(out) else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
