"""Reference cases for tests/test_casvit.py, computed by the official PyTorch CAS-ViT.

    /work/torchenv/bin/python tools/make_casvit_fixtures.py --torch-ref /path/to/CAS-ViT \\
        --out tests/fixtures/casvit_official

writes ``generated.json``, ``generated.npz`` and two small official-format checkpoints (format:
tests/fixtures/casvit_official/README.md). Runs
the official ``classification/model/rcvit.py`` (imported from the clone, never copied) with
torch on the CPU, float32.

Two kinds of case:

* ``module``: one official layer (AdditiveTokenMixer, AdditiveBlock, LocalIntegration, Mlp,
  SpatialOperation, ChannelOperation, Embedding, stem, Stage) with its whole state dict stored.
* ``model``: a whole RCViT (casvit_s/m/t, non-square sizes, distillation, fork_feat, training
  mode, 32x32). Only the BatchNorm running statistics are stored (float16 values, calibrated on
  a batch); both sides regenerate every other tensor with :func:`recipe_tensor` (numpy, seeded
  by the case seed and the tensor name).

Weights: random (the official initialisation, then perturbed; BatchNorm running statistics from
a calibration batch, then perturbed), so no layer is an identity. Gradients are those of
sum(output * cotangent) w.r.t. the input and every parameter (models: the parameters listed in
``grads``), in the case's mode: ``eval``, or ``train`` (batch statistics; the running statistics
after the forward pass are stored as ``after.<name>``; drop path and dropout are 0 so the pass is
deterministic).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import zlib

import numpy as np


# official RCViT configurations (classification/model/rcvit.py's rcvit_xs/s/m/t)
ARCHS = {"casvit_xs": dict(layers=[2, 2, 4, 2], embed_dims=[48, 56, 112, 220]),
         "casvit_s": dict(layers=[3, 3, 6, 3], embed_dims=[48, 64, 128, 256]),
         "casvit_m": dict(layers=[3, 3, 6, 3], embed_dims=[64, 96, 192, 384]),
         "casvit_t": dict(layers=[3, 3, 6, 3], embed_dims=[96, 128, 256, 512])}
COMMON = dict(mlp_ratios=4, downsamples=[True, True, True, True], attn_bias=False, drop_rate=0.0, fork_feat=False)


def recipe_tensor(name: str, shape, seed: int) -> np.ndarray:
    """A tensor of a model case, the same on both sides, seeded by the case seed and the tensor
    name: 1-D ``*.weight`` (BatchNorm scales) 1 + 0.1 n; other 1-D tensors 0.05 n; weights
    uniform with the standard deviation 1/sqrt(fan_in) (Linear: 4/sqrt(fan_in), logits of a
    few units)."""
    rng = np.random.RandomState((seed * 1_000_003 + zlib.crc32(name.encode())) % (2 ** 31))
    if len(shape) == 1:
        noise = rng.standard_normal(shape)
        return (1.0 + 0.1 * noise if name.endswith("weight") else 0.05 * noise).astype(np.float32)
    fan_in = int(np.prod(shape[1:]))
    std = (4.0 if len(shape) == 2 else 1.0) / np.sqrt(fan_in)
    return (rng.uniform(-1.0, 1.0, size=shape) * std * np.sqrt(3.0)).astype(np.float32)


def is_statistic(name: str) -> bool:
    """BatchNorm running statistics: stored (as float16 values) in model cases."""
    return name.endswith(("running_mean", "running_var"))


def pack(arrays: dict, prefix: str, tensors: dict, index: dict, dtype=np.float32) -> None:
    """Store ``tensors`` (name -> array) as one flat ``prefix`` array of ``dtype`` (fewer npz
    entries: each costs a zip header); ``index[prefix]`` lists [name, shape, dtype] in order."""
    items = list(tensors.items())
    index[prefix] = [[k, list(v.shape), str(v.dtype) if v.dtype.kind != "f" else "float32"] for k, v in items]
    arrays[prefix] = np.concatenate([np.asarray(v, dtype=dtype).reshape(-1) for _, v in items]) if items \
        else np.zeros([0], dtype)


def unpack(arrays, prefix: str, index: dict) -> dict:
    """The tensors :func:`pack` stored under ``prefix`` (name -> array in its dtype)."""
    flat, out, pos = arrays[prefix], {}, 0
    for name, shape, dtype in index.get(prefix, []):
        n = int(np.prod(shape)) if shape else 1
        out[name] = flat[pos:pos + n].astype(dtype).reshape(shape)
        pos += n
    return out


def is_small(shape) -> bool:  # gradients of the model cases compared besides WHOLE_BLOCK_GRADS
    return int(np.prod(shape)) <= 1024


# ----------------------------------------------------------------------------- cases
def module_cases():
    """(name, kind, kwargs, input_shape, mode): kwargs name classes ('GELU', 'BatchNorm2d')."""
    bn = dict(act_layer="GELU", norm_layer="BatchNorm2d")
    return [
        ("token_mixer_train", "AdditiveTokenMixer", dict(dim=16, attn_bias=False), [2, 16, 7, 5], "train"),
        ("token_mixer_bias_1x1", "AdditiveTokenMixer", dict(dim=8, attn_bias=True), [3, 8, 1, 1], "train"),
        ("token_mixer_odd", "AdditiveTokenMixer", dict(dim=12), [1, 12, 3, 11], "eval"),
        ("block_relu", "AdditiveBlock", dict(dim=16, mlp_ratio=2.0, act_layer="ReLU", norm_layer="BatchNorm2d"),
         [2, 16, 6, 5], "eval"),
        ("block_relu_train", "AdditiveBlock", dict(dim=16, mlp_ratio=2.0, act_layer="ReLU", norm_layer="BatchNorm2d"),
         [2, 16, 5, 6], "train"),
        ("block_train", "AdditiveBlock", dict(dim=24, mlp_ratio=4.0, **bn), [2, 24, 8, 7], "train"),
        ("block_bias_1x2", "AdditiveBlock", dict(dim=16, attn_bias=True, mlp_ratio=3.0, **bn), [1, 16, 1, 2], "eval"),
        ("block_dropout_eval", "AdditiveBlock", dict(dim=16, drop=0.2, drop_path=0.3, **bn), [2, 16, 4, 4], "eval"),
        ("local_integration_r15", "LocalIntegration", dict(dim=12, ratio=1.5, **bn), [2, 12, 5, 7], "train"),
        ("local_integration_relu", "LocalIntegration", dict(dim=8, ratio=1, act_layer="ReLU", norm_layer="BatchNorm2d"),
         [1, 8, 6, 6], "eval"),
        ("mlp", "Mlp", dict(in_features=16, hidden_features=40, out_features=12), [2, 16, 5, 3], "eval"),
        ("mlp_relu", "Mlp", dict(in_features=8, act_layer="ReLU"), [1, 8, 4, 4], "eval"),
        ("spatial_operation", "SpatialOperation", dict(dim=16), [2, 16, 5, 6], "train"),
        ("channel_operation", "ChannelOperation", dict(dim=16), [2, 16, 5, 6], "eval"),
        ("embedding_train", "Embedding", dict(patch_size=3, stride=2, padding=1, in_chans=8, embed_dim=16),
         [2, 8, 7, 10], "train"),
        ("embedding_patch2", "Embedding", dict(patch_size=2, stride=2, padding=0, in_chans=8, embed_dim=12),
         [1, 8, 6, 8], "eval"),
        ("stem_train", "stem", dict(in_chs=3, out_chs=16), [2, 3, 13, 18], "train"),
        ("stage", "Stage", dict(dim=16, index=1, layers=[1, 2, 1, 1], mlp_ratio=4.0, drop_path_rate=0.1),
         [2, 16, 6, 6], "eval"),
    ]


# the defaults of these build GELU(dim) as norm: the official code fails at the forward pass
ERROR_CASES = [("local_integration_defaults", "LocalIntegration", dict(dim=8), [1, 8, 4, 4]),
               ("block_defaults", "AdditiveBlock", dict(dim=8), [1, 8, 4, 4])]


WHOLE_BLOCK_GRADS = ()  # every gradient of the first block (module cases check every parameter)
FEATURE_CASES = ("casvit_s_48x80", "casvit_xs_32_train")  # the four stage maps
AFTER_CASES = ("casvit_xs_32_train",)  # running statistics after training mode


def model_cases():
    """(name, arch, overrides, num_classes, input_shape, mode, seed)."""
    return [
        ("casvit_s_48x80", "casvit_s", {}, 7, [1, 3, 48, 80], "eval", 1),
        ("casvit_m_72x40_dist", "casvit_m", {"distillation": True}, 5, [1, 3, 72, 40], "eval", 2),
        ("casvit_t_40x56", "casvit_t", {}, 3, [1, 3, 40, 56], "eval", 3),
        ("casvit_xs_33x47_train", "casvit_xs", {}, 10, [2, 3, 33, 47], "train", 4),
        ("casvit_xs_32_train", "casvit_xs", {}, 10, [8, 3, 32, 32], "train", 5),
        ("casvit_xs_dist_train", "casvit_xs", {"distillation": True}, 6, [2, 3, 40, 24], "train", 6),
        ("casvit_xs_fork_feat", "casvit_xs", {"fork_feat": True}, 0, [1, 3, 32, 48], "eval", 7),
    ]


# ----------------------------------------------------------------------------- official side
def _build(rcvit, nn, kind, kwargs):
    kw = {k: (getattr(nn, v) if k in ("act_layer", "norm_layer") else v) for k, v in kwargs.items()}
    return getattr(rcvit, kind)(**kw)


def _perturb(model, torch, gen, calib_shape=None, only_statistics=False):
    """Perturb every parameter (not with ``only_statistics``); BatchNorm running statistics
    from a calibration batch, then perturbed (the model returns to eval mode)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if only_statistics:
                break
            noise = torch.randn(p.shape, generator=gen)
            if p.ndim == 1 and name.endswith("weight"):  # norm scales
                p.copy_(1.0 + 0.1 * noise)
            elif p.ndim == 1:
                p.add_(0.05 * noise)
            else:
                p.add_(0.5 * (p.std() if p.numel() > 1 else 0.1) * noise)
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        if calib_shape is not None and bns:
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration batch
            model.train()
            model(torch.randn(calib_shape, generator=gen))
            for m in bns:
                m.momentum = 0.1
        for m in bns:
            m.running_mean.add_(0.1 * torch.randn(m.running_mean.shape, generator=gen) * m.running_var.sqrt())
            m.running_var.mul_(torch.exp(0.2 * torch.randn(m.running_var.shape, generator=gen)))
            m.num_batches_tracked.fill_(375300)
    model.eval()


def case_rng(name: str) -> np.random.RandomState:
    """Inputs and cotangents of a case: drawn in order from this generator (both sides)."""
    return np.random.RandomState(zlib.crc32(name.encode()) % (2 ** 31))


def _as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _run(model, torch, rng, shape, mode):
    """Input from ``rng``, forward in ``mode``, cotangents from ``rng``, sum(outputs * cotangents)
    backward: (outputs, cotangents, grad input)."""
    model.train() if mode == "train" else model.eval()
    x = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).requires_grad_(True)
    outs = _as_list(model(x))
    cots = [torch.from_numpy(rng.standard_normal(o.shape).astype(np.float32)) for o in outs]
    sum(((o * r).sum() for o, r in zip(outs, cots)), torch.zeros(())).backward()
    return [o.detach().numpy() for o in outs], [r.numpy() for r in cots], x.grad.numpy()


def make_modules(rcvit, torch, nn, arrays, seed):
    cases = []
    for i, (name, kind, kwargs, shape, mode) in enumerate(module_cases()):
        gen = torch.Generator().manual_seed(seed * 100 + i)
        model = _build(rcvit, nn, kind, kwargs)
        _perturb(model, torch, gen, calib_shape=[4] + shape[1:])
        state = {k: v.clone().numpy() for k, v in model.state_dict().items()}
        outs, cots, gx = _run(model, torch, case_rng(name), shape, mode)
        arrays.update({f"{name}/output": outs[0], f"{name}/grad.input": gx})
        index = {}
        pack(arrays, f"{name}/param", state, index)  # float32 holds 375300 exactly
        grads = {k: p.grad.numpy() for k, p in model.named_parameters() if p.grad is not None}
        pack(arrays, f"{name}/grad", grads, index)
        if mode == "train":
            pack(arrays, f"{name}/after", {k: v.numpy() for k, v in model.state_dict().items()
                                           if k.endswith(("running_mean", "running_var"))}, index)
        cases.append(dict(name=name, type="module", kind=kind, kwargs=kwargs, input_shape=shape, mode=mode,
                          index=index))
    for name, kind, kwargs, shape in ERROR_CASES:
        model = _build(rcvit, nn, kind, kwargs)
        try:
            model(torch.zeros(shape))
            error = None
        except Exception as e:  # what the official code raises
            error = f"{type(e).__name__}: {e}"
        cases.append(dict(name=name, type="error", kind=kind, kwargs=kwargs, input_shape=shape,
                          error=error, params=sum(p.numel() for p in model.parameters())))
    return cases


def make_models(rcvit, torch, arrays):
    cases = []
    for name, arch, overrides, num_classes, shape, mode, seed in model_cases():
        gen = torch.Generator().manual_seed(1000 + seed)
        torch.manual_seed(seed)
        kwargs = dict(ARCHS[arch], **COMMON, distillation=False, drop_path_rate=0.0)
        kwargs.update(overrides)
        model = rcvit.RCViT(num_classes=num_classes, **kwargs)
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if v.is_floating_point() and not is_statistic(k):
                    v.copy_(torch.from_numpy(recipe_tensor(k, tuple(v.shape), seed)))
        _perturb(model, torch, gen, calib_shape=[2, 3] + shape[2:], only_statistics=True)
        with torch.no_grad():  # stored statistics hold float16 values: stored as float16 exactly
            for k, v in model.state_dict().items():
                if is_statistic(k):
                    v.copy_(v.half().float())
        state = {k: v.clone().numpy() for k, v in model.state_dict().items()}
        feats = {}
        if name in FEATURE_CASES:
            hooks = [model.network[i].register_forward_hook(
                lambda m, inp, out, i=i: feats.__setitem__(f"feat.network.{i}", out.detach().numpy()))
                for i in (0, 2, 4, 6)]
        outs, cots, gx = _run(model, torch, case_rng(name), shape, mode)
        if name in FEATURE_CASES:
            for h in hooks:
                h.remove()
        arrays[f"{name}/grad.input"] = gx
        for j, o in enumerate(outs):
            arrays[f"{name}/output.{j}"] = o
        arrays.update({f"{name}/{k}": v for k, v in feats.items()})
        index = {}
        pack(arrays, f"{name}/param", {k: v for k, v in state.items() if is_statistic(k)}, index, np.float16)
        # gradients compared: the stem, the embeddings, the last block, the final norm and the
        # heads (small tensors), and every parameter of the first block in WHOLE_BLOCK_GRADS
        # cases (grad.input checks the backward pass through every layer)
        blocks = sorted({k[: k.index(".", len("network.x.")) + 1] for k, _ in model.named_parameters()
                         if k.startswith("network.") and ".local_perception." in k})
        last = max(blocks, key=lambda b: tuple(int(t) for t in b.split(".")[1:3]))
        grads = []
        for k, p in model.named_parameters():
            if p.grad is None:
                continue
            if k.startswith(blocks[0]) and name in WHOLE_BLOCK_GRADS or k.startswith(("head.", "dist_head.")):
                grads.append(k)
            elif is_small(p.shape) and (k.startswith(("patch_embed.", last, "norm")) or
                                        (k.startswith("network.") and ".local_perception." not in k
                                         and k.count(".") == 3)):
                grads.append(k)
        pack(arrays, f"{name}/grad", {k: model.get_parameter(k).grad.numpy() for k in grads}, index)
        if mode == "train" and name in AFTER_CASES:
            pack(arrays, f"{name}/after", {k: v.numpy() for k, v in model.state_dict().items()
                                           if k.endswith(("running_mean", "running_var"))}, index)
        cases.append(dict(name=name, type="model", arch=arch, official_kwargs=dict(kwargs, num_classes=num_classes),
                          input_shape=shape, mode=mode, seed=seed, outputs=len(outs), features=sorted(feats),
                          ref_max_abs=float(max(np.abs(o).max() for o in outs)), index=index))
    return cases


TINY = dict(layers=[1, 1, 1, 1], embed_dims=[8, 8, 16, 16], mlp_ratios=4, downsamples=[True, True, True, True],
            attn_bias=False, drop_rate=0.0, fork_feat=False, drop_path_rate=0.1)


def make_released(rcvit, torch, out, arrays):
    """Checkpoints as the official training writes them (utils.save_model), for a tiny RCViT:
    ``released_tiny.pth`` (zip): {'model' (with dist_head), 'model_ema' (other weights),
    'optimizer' (no moments), 'epoch': 'best_224', 'scaler', 'args': argparse.Namespace}; and
    ``released_tiny_nodist_legacy.pth`` (the legacy, pre-zip format): {'model' without dist_head,
    'epoch': 12}. Eval-mode logits of both heads' mean, of the head alone (a model without
    distillation, as main.py builds it), and of the EMA weights."""
    import argparse as ap
    import copy

    gen = torch.Generator().manual_seed(99)
    torch.manual_seed(99)
    model = rcvit.RCViT(num_classes=5, distillation=True, **TINY)
    _perturb(model, torch, gen, calib_shape=[4, 3, 32, 32])
    ema = copy.deepcopy(model)
    _perturb(ema, torch, gen, calib_shape=[4, 3, 32, 32])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)  # its state (moments) left out: file size
    args = ap.Namespace(model="rcvit_xs", nb_classes=5, input_size=32, drop_path=0.1, model_ema=True, lr=6e-3,
                        data_path="/data/imagenet", output_dir="out")
    torch.save({"model": model.state_dict(), "model_ema": ema.state_dict(), "optimizer": opt.state_dict(),
                "epoch": "best_224", "scaler": {"scale": 65536.0, "growth_factor": 2.0}, "args": args},
               os.path.join(out, "released_tiny.pth"))
    nodist = {k: v for k, v in model.state_dict().items() if not k.startswith("dist_head.")}
    torch.save({"model": nodist, "epoch": 12}, os.path.join(out, "released_tiny_nodist_legacy.pth"),
               _use_new_zipfile_serialization=False)
    rng = case_rng("released_tiny")
    x = torch.from_numpy(rng.standard_normal((2, 3, 32, 32)).astype(np.float32))
    with torch.no_grad():
        arrays["released_tiny/logits_dist"] = model(x).numpy()
        arrays["released_tiny/logits_ema"] = ema(x).numpy()
        model.dist = False  # what a model built without the distillation head computes
        arrays["released_tiny/logits_head"] = model(x).numpy()
    return [dict(name="released_tiny", type="released", official_kwargs=dict(TINY, num_classes=5),
                 input_shape=[2, 3, 32, 32], files=["released_tiny.pth", "released_tiny_nodist_legacy.pth"])]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--torch-ref", required=True, help="clone of github.com/Tianfang-Zhang/CAS-ViT")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=11)
    a = p.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch
    import torch.nn as nn
    from official_casvit import load_official

    torch.set_num_threads(2)
    rcvit = load_official(a.torch_ref)
    arrays = {}
    os.makedirs(a.out, exist_ok=True)
    cases = make_modules(rcvit, torch, nn, arrays, a.seed) + make_models(rcvit, torch, arrays) + \
        make_released(rcvit, torch, a.out, arrays)
    meta = {"official": "github.com/Tianfang-Zhang/CAS-ViT classification/model/rcvit.py",
            "torch": torch.__version__, "seed": a.seed,
            "tolerance": "max|ours - ref| <= 1e-4 * max(1, max|ref|)", "cases": cases}
    with open(os.path.join(a.out, "generated.json"), "w") as f:  # one line per case
        f.write(json.dumps({k: v for k, v in meta.items() if k != "cases"})[:-1] + ', "cases": [\n'
                + ",\n".join(json.dumps(c) for c in cases) + "\n]}\n")
    np.savez_compressed(os.path.join(a.out, "generated.npz"), **arrays)
    size = os.path.getsize(os.path.join(a.out, "generated.npz"))
    print(f"{len(cases)} cases, {len(arrays)} arrays, {size / 1e6:.2f} MB -> {a.out}")


if __name__ == "__main__":
    main()
