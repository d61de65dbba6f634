"""Reference data for CrossFormer / CrossFormer++ made by the official PyTorch code (side env with
torch; never needed by the tests, which read what this writes).

    /work/torchenv/bin/python tools/make_crossformer_fixtures.py \\
        --main /path/to/CrossFormer (branch main) --v1 /path/to/CrossFormer (branch crossformer) \\
        --out tests/fixtures/crossformer_extra --random 12 --seed 0

Writes to ``--out``:
* ``cases.json`` + ``arrays.npz``: whole models the official code built and ran, in eval mode,
  float32. Weights, inputs and cotangents are not stored: they are drawn from numpy seeds by
  :func:`seeded_state` / :func:`seeded_array` (numpy only, shared with the tests), so a case costs
  only its outputs. ``kind`` 'classifier': ``CrossFormer(**official_kwargs)`` of
  models/crossformer.py (branch ``official_code``), outputs ``logits`` and ``grad_input`` = d
  sum(logits * R) / d input; 'backbone': models/crossformer_backbone_det.py (any input size),
  outputs the four stage maps ``feat.<i>`` (NCHW) and ``grad_input`` = d sum_i(feat_i * R_i) /
  d input. ``arch`` + ``overrides`` + ``img_size`` build the same model with
  ``create_model(arch, num_classes, img_size=img_size, **overrides)``.
* ``counts.json``: parameters (sum of numel of ``parameters()``), the official ``flops()`` and
  fvcore's count (``FlopCountAnalysis(model, x).total()``, multiply-accumulates) of every
  registered variant at 224 with 1000 classes.
* ``reference_noise.json``: for each case of the official single-layer fixtures
  (shared/fixtures/crossformer_official/modules.*), the relative difference between the float32
  reference and the same official layer evaluated in float64 (float64 weights and inputs), per
  compared array: how far the float32 reference itself is from the exact value.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ----------------------------------------------------------------------------- seeded data (numpy only)
def seeded_array(shape, seed: int, scale: float = 1.0) -> np.ndarray:
    """A float32 standard-normal array from ``numpy.random.RandomState(seed)``, times ``scale``."""
    return (np.random.RandomState(seed).standard_normal(tuple(shape)) * scale).astype(np.float32)


def seeded_state(shapes, seed: int) -> dict:
    """An official state dict ({name: float32 array}, PyTorch layouts) drawn from ``seed`` for the
    (name, shape) list ``shapes`` (in that order): LayerNorm scales 1 + 0.1 n, biases 0.05 n,
    other weights n / sqrt(fan_in) (fan_in: the product of the trailing dims), the position
    embedding 0.02 n, the classifier weight 4 n / sqrt(fan_in). No layer is an identity."""
    rng = np.random.RandomState(seed)
    out = {}
    for name, shape in shapes:
        shape = tuple(shape)
        n = rng.standard_normal(shape)
        if name.endswith("absolute_pos_embed"):
            value = 0.02 * n
        elif len(shape) == 1 and name.endswith("weight"):
            value = 1 + 0.1 * n
        elif len(shape) == 1:
            value = 0.05 * n
        else:
            value = n / np.sqrt(max(1, int(np.prod(shape[1:]))))
            if name.startswith("head."):
                value = 4 * value
        out[name] = value.astype(np.float32)
    return out


# ----------------------------------------------------------------------------- official models
def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def _official(args, code):
    sys.path.insert(0, HERE)
    from official_crossformer import load_backbone, load_official

    if code == "backbone":
        return load_backbone(args.main)
    return load_official(args.main if code == "main" else args.v1)


_CONFIGS: dict = {}


def registry_configs(python: str) -> dict:
    """{arch: model_config(arch)} of every registered CrossFormer, read by ``python`` (an
    interpreter with Paddle: the registry lives in paddle_biformer, which imports it)."""
    if not _CONFIGS:
        import subprocess

        code = ("import json; from paddle_biformer.registry import list_models, model_config; "
                "print(json.dumps({a: model_config(a) for a in list_models('crossformer*')}))")
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
        _CONFIGS.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    return _CONFIGS


def _registry_config(arch):
    return dict(_CONFIGS[arch])


def official_model(args, case):
    """(model, kwargs) of the official code for ``case``, float32, eval mode."""
    sys.path.insert(0, HERE)
    from official_crossformer import official_kwargs

    module = _official(args, case["official_code"])
    config = dict(_registry_config(case["arch"]), img_size=case["img_size"], **case["overrides"])
    kwargs = official_kwargs(config, case.get("num_classes", 0), module if case["official_code"] != "backbone" else None)
    if case["official_code"] == "backbone":  # the backbones take one mlp_ratio for all stages
        ratios = kwargs["mlp_ratio"] if isinstance(kwargs["mlp_ratio"], list) else [kwargs["mlp_ratio"]]
        assert len(set(ratios)) == 1, "the official backbone takes one mlp_ratio"
        kwargs["mlp_ratio"] = ratios[0]
    with _quiet():
        model = module.CrossFormer(**kwargs)
    model.eval()
    return model, kwargs


def run_case(args, case) -> dict:
    """Build, load seeded weights, run; returns the arrays to store."""
    import torch

    model, kwargs = official_model(args, case)
    case["official_kwargs"] = {k: v for k, v in kwargs.items() if k != "norm_layer"}
    # parameters only: not the v1 code's DPB index buffers (attn.biases, relative_position_index)
    params = dict(model.named_parameters())
    shapes = [[k, list(v.shape)] for k, v in model.state_dict().items() if k in params]
    case["state_shapes"] = shapes
    state = seeded_state(shapes, case["weights_seed"])
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    assert not unexpected and all(k.endswith(("attn.biases", "relative_position_index")) for k in missing), (missing, unexpected)
    x = torch.from_numpy(seeded_array(case["input_shape"], case["input_seed"])).requires_grad_()
    out = {}
    if case["kind"] == "classifier":
        logits = model(x)
        r = torch.from_numpy(seeded_array(logits.shape, case["input_seed"] + 1))
        (logits * r).sum().backward()
        out["logits"] = logits.detach().numpy()
    else:
        feats = model(x)
        total = 0
        for i, f in enumerate(feats):
            total = total + (f * torch.from_numpy(seeded_array(f.shape, case["input_seed"] + 1 + i))).sum()
            out[f"feat.{i}"] = f.detach().numpy()
        total.backward()
    out["grad_input"] = x.grad.numpy()
    case["ref_max_abs"] = {k: float(np.abs(v).max()) for k, v in out.items()}
    return out


# ----------------------------------------------------------------------------- cases
def fixed_cases():
    """Cases chosen by hand: the released layouts where they pad, v1, sizes and options."""
    return [
        # CrossFormer++-S layout at 224: LDA pads 56 -> 64 and 28 -> 32 (masks), group 14 covers stage 3
        dict(name="pp_small_224", kind="classifier", arch="crossformer_pp_small", official_code="main",
             img_size=224, num_classes=10, overrides=dict(depths=[4, 2, 1, 1]), input_shape=[1, 3, 224, 224]),
        # the v1 code (LDA interval H // G) = main with crs_interval = resolution // group
        dict(name="v1_group4_64", kind="classifier", arch="crossformer_tiny", official_code="v1",
             img_size=64, num_classes=10, input_shape=[2, 3, 64, 64],
             overrides=dict(depths=[2, 2, 2, 1], embed_dim=32, group_size=[4, 4, 4, 4], crs_interval=[4, 2, 1, 1])),
        # centred padding (pad_type=1) and no_mask, CrossFormer++ options on the released layout
        dict(name="pp_pad_type1_96", kind="classifier", arch="crossformer_pp_small", official_code="main",
             img_size=96, num_classes=5, input_shape=[2, 3, 96, 96],
             overrides=dict(depths=[4, 2, 2, 1], embed_dim=32, group_size=[5, 4, 3, 7], crs_interval=[2, 2, 1, 1], pad_type=1)),
        dict(name="pp_no_mask_96", kind="classifier", arch="crossformer_pp_small", official_code="main",
             img_size=96, num_classes=5, input_shape=[1, 3, 96, 96],
             overrides=dict(depths=[2, 2, 2, 1], embed_dim=32, group_size=[5, 4, 3, 7], crs_interval=[2, 2, 1, 1], no_mask=True)),
        # the detection backbone at sizes other than its construction's: non-square, small maps
        # progressive group sizes of CrossFormer++ (official group_type options)
        dict(name="pp_group_alter_64", kind="classifier", arch="crossformer_pp_small", official_code="main",
             img_size=64, num_classes=4, input_shape=[1, 3, 64, 64],
             overrides=dict(depths=[2, 2, 4, 2], embed_dim=32, group_type="alter")),
        dict(name="pp_group_linear_96", kind="classifier", arch="crossformer_pp_small", official_code="main",
             img_size=96, num_classes=4, input_shape=[1, 3, 96, 96],
             overrides=dict(depths=[2, 2, 4, 2], embed_dim=16, group_type="linear")),
        dict(name="backbone_tiny_96x160", kind="backbone", arch="crossformer_tiny", official_code="backbone",
             img_size=224, input_shape=[1, 3, 96, 160], overrides=dict(depths=[2, 2, 2, 1], embed_dim=16)),
        dict(name="backbone_pp_64x192", kind="backbone", arch="crossformer_pp_small", official_code="backbone",
             img_size=224, input_shape=[1, 3, 64, 192], overrides=dict(depths=[4, 2, 1, 1], embed_dim=32)),
        dict(name="backbone_tiny_96", kind="backbone", arch="crossformer_tiny", official_code="backbone",
             img_size=224, input_shape=[1, 3, 96, 96], overrides=dict(depths=[1, 1, 2, 1], embed_dim=32)),
    ]


def random_case(r: random.Random, index: int) -> dict:
    """A random small CrossFormer with random official options (a classifier at its own size)."""
    img = r.choice([64, 64, 64, 96])
    embed = r.choice([16, 32, 32, 48])
    heads = [r.choice([1, 2]) * 2 ** i for i in range(4)]
    depths = [r.choice([1, 2, 2, 3, 4]) for _ in range(4)]
    kw = dict(embed_dim=embed, depths=depths, num_heads=heads,
              group_size=[r.randint(2, 7) for _ in range(4)], crs_interval=[r.randint(1, 4) for _ in range(4)],
              mlp_ratio=[float(r.choice([1, 2, 3, 4])) for _ in range(4)],
              pad_type=r.choice([0, 0, 1]), use_acl=r.random() < 0.4, use_cpe=r.random() < 0.15,
              adaptive_interval=r.random() < 0.2, no_mask=r.random() < 0.15,
              group_type=r.choice(["constant"] * 5 + ["linear", "linear_div", "alter", "7_14"]),
              qkv_bias=r.random() < 0.8, patch_norm=r.random() < 0.85, ape=r.random() < 0.1,
              patch_size=r.choice([[4, 8, 16, 32], [4, 8, 16, 32], [4], [4, 8]]),
              merge_size=r.choice([[[2, 4]] * 3, [[2]] * 3, [[2, 4, 6], [2, 4], [2]]]),
              in_chans=r.choice([3, 3, 1]))
    if r.random() < 0.25:
        kw["qk_scale"] = round(r.uniform(0.1, 0.5), 3)
    return dict(name=f"random_{index:02d}", kind="classifier", arch="crossformer_tiny", official_code="main",
                img_size=img, num_classes=r.randint(2, 10), overrides=kw,
                input_shape=[r.choice([1, 1, 2]) if img == 64 else 1, kw["in_chans"], img, img])


# ----------------------------------------------------------------------------- counts
def counts(args) -> dict:
    import torch
    from fvcore.nn import FlopCountAnalysis

    out = {}
    for arch in sorted(_CONFIGS):
        code = "main" if arch.startswith("crossformer_pp") else "v1"
        entry = {}
        for branch in (["v1", "main"] if code == "v1" else ["main"]):
            model, _ = official_model(args, dict(arch=arch, official_code=branch, img_size=224,
                                                 num_classes=1000, overrides={}))
            params = sum(p.numel() for p in model.parameters())
            with _quiet():
                official_flops = int(model.flops())
            entry[branch] = {"params": int(params), "flops_official": official_flops}
            if branch == code:
                analysis = FlopCountAnalysis(model, torch.zeros(1, 3, 224, 224))
                analysis.unsupported_ops_warnings(False)
                analysis.uncalled_modules_warnings(False)
                entry["fvcore"] = int(analysis.total())
        out[arch] = entry
        print(arch, entry[code], entry["fvcore"], flush=True)
    return out


# ----------------------------------------------------------------------------- reference noise
def reference_noise(args) -> dict:
    """rel. difference |ref32 - ref64| / max(1, max|ref32|) per array of the official layer cases."""
    import torch

    folder = args.official_fixtures
    with open(os.path.join(folder, "modules.json")) as f:
        cases = json.load(f)
    arrays = np.load(os.path.join(folder, "modules.npz"))
    module = _official(args, "main")
    out = {}
    for case in cases:
        name = case["name"]
        kwargs = dict(case["kwargs"])
        if "norm_layer" in kwargs:
            kwargs["norm_layer"] = getattr(torch.nn, kwargs["norm_layer"])
        for key in ("group_size", "input_resolution", "patch_size"):
            if isinstance(kwargs.get(key), list):
                kwargs[key] = tuple(kwargs[key]) if key != "patch_size" else kwargs[key]
        layer = getattr(module, case["kind"])(**kwargs).double().eval()
        prefix = f"{name}/param."
        state = {k[len(prefix):]: torch.from_numpy(arrays[k].astype(np.float64)) for k in arrays.files if k.startswith(prefix)}
        layer.load_state_dict(state, strict=False)
        inputs = [torch.from_numpy(arrays[f"{name}/{k}"].astype(np.float64)) for k in case["inputs"]]
        inputs[0].requires_grad_()
        y = layer(*inputs)
        (y * torch.from_numpy(arrays[f"{name}/cotangent"].astype(np.float64))).sum().backward()
        res = {"output": y.detach().numpy(), "grad.input": inputs[0].grad.numpy()}
        res.update({f"grad.{k}": p.grad.numpy() for k, p in layer.named_parameters() if p.grad is not None})
        noise = {}
        for key, value in res.items():
            ref = arrays[f"{name}/{key}"].astype(np.float64)
            noise[key] = float(np.abs(ref - value).max() / max(1.0, np.abs(ref).max()))
        out[name] = noise
        worst = max(noise.items(), key=lambda kv: kv[1])
        print(f"{name}: largest float32-vs-float64 difference of the reference {worst[1]:.2e} ({worst[0]})", flush=True)
    return out


# ----------------------------------------------------------------------------- main
def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--main", default="/work/refs/CrossFormer-main", help="clone of the official main branch")
    p.add_argument("--v1", default="/work/refs/CrossFormer-v1", help="clone of the official crossformer branch")
    p.add_argument("--official-fixtures", default=os.path.join(ROOT, "tests", "fixtures", "crossformer_official"))
    p.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "crossformer_extra"))
    p.add_argument("--random", type=int, default=12, help="random option cases")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--paddle-python", default="/work/main/.venv/bin/python",
                   help="an interpreter with Paddle, to read our registry's configurations")
    p.add_argument("--only", choices=["cases", "counts", "noise"], help="make one part only")
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)  # reproducible float32 sums (the shared fixtures were made so too)
    os.makedirs(args.out, exist_ok=True)
    registry_configs(args.paddle_python)
    if args.only in (None, "cases"):
        r = random.Random(args.seed)
        cases, arrays, skipped = [], {}, 0
        candidates = fixed_cases()
        index = 0
        while len([c for c in cases if c["name"].startswith("random")]) < args.random or candidates:
            if candidates:
                case = candidates.pop(0)
            else:
                case = random_case(r, index)
                index += 1
            case["weights_seed"] = 1000 + len(cases)
            case["input_seed"] = 2000 + 10 * len(cases)
            try:
                out = run_case(args, case)
            except Exception as e:  # a configuration the official code rejects
                if not case["name"].startswith("random"):
                    raise
                skipped += 1
                print(f"skipped (official code rejects it: {type(e).__name__}: {str(e)[:80]})", flush=True)
                continue
            case["compare"] = sorted(out)
            cases.append(case)
            arrays.update({f"{case['name']}/{k}": v for k, v in out.items()})
            print(f"{case['name']}: {case['input_shape']} {sorted(out)}", flush=True)
        with open(os.path.join(args.out, "cases.json"), "w") as f:
            json.dump({"made_by": "tools/make_crossformer_fixtures.py", "torch": torch.__version__,
                       "seed": args.seed, "skipped_random_configurations": skipped, "cases": cases}, f)
        np.savez_compressed(os.path.join(args.out, "arrays.npz"), **arrays)
    if args.only in (None, "counts"):
        with open(os.path.join(args.out, "counts.json"), "w") as f:
            json.dump(counts(args), f, indent=1)
    if args.only in (None, "noise"):
        with open(os.path.join(args.out, "reference_noise.json"), "w") as f:
            json.dump(reference_noise(args), f, indent=1)


if __name__ == "__main__":
    main()
