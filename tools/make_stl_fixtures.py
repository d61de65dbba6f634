"""Reference outputs of the official BiFormer-STL (models/biformer_stl.py) for tests/fixtures/stl.

Run in an environment with torch, einops and timm (never in the tests):

    python tools/make_stl_fixtures.py /path/to/BiFormer tests/fixtures/stl

Writes, for reduced configurations with random (seeded, perturbed) weights and BatchNorm
statistics: ``cases.json`` (the official constructor's keyword arguments, input shape),
``<case>.pth`` (``torch.save({'model': state_dict})``, the release format) and ``<case>.npz``
(input, eval-mode logits, the four stage maps (NCHW), a cotangent R and d sum(logits * R) /
d input), plus the parameter count and fvcore FLOPs of the released configuration.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

CASES = [
    {"name": "stl_bn_64", "input_shape": [2, 3, 64, 64],
     "kwargs": dict(num_classes=7, depth=[1, 1, 2, 1], embed_dim=[16, 32, 64, 128], head_dim=16,
                    mlp_ratios=[4, 4, 4, 4], n_wins=(2, 2, 2, 2), topks=(1, 2, 4, -2), side_dwconv=5,
                    norm_layer="BatchNorm2d")},
    {"name": "stl_ln_96x64", "input_shape": [1, 3, 96, 64],
     "kwargs": dict(num_classes=5, depth=[1, 2, 1, 1], embed_dim=[16, 32, 64, 128], head_dim=16,
                    mlp_ratios=[3, 3, 3, 3], n_wins=(4, 2, 1, 1), topks=(2, 3, -1, 0), side_dwconv=3,
                    norm_layer="LayerNorm2d")},
]


def main(repo, out):
    import torch
    import torch.nn as nn

    from official_ref import load_official

    load_official(repo)  # shims and sys.path
    import importlib

    stl = importlib.import_module("models.biformer_stl")
    norms = {"BatchNorm2d": nn.BatchNorm2d, "LayerNorm2d": stl.LayerNorm2d}
    os.makedirs(out, exist_ok=True)
    for i, case in enumerate(CASES):
        torch.manual_seed(100 + i)
        kwargs = dict(case["kwargs"])
        model = stl.BiFormerSTL(**{**kwargs, "norm_layer": norms[kwargs["norm_layer"]]})
        with torch.no_grad():  # perturb every parameter and BatchNorm statistic: no identity layer
            for name, p in model.named_parameters():
                p.add_(torch.randn_like(p) * (0.1 if p.ndim == 1 else 0.5 * float(p.std()) + 1e-3))
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.2)
                    m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
            model.head.weight.mul_(8)
        model.eval()
        x = torch.randn(*case["input_shape"], requires_grad=True)
        feats, h = [], x
        for s in range(4):
            h = model.stages[s](model.downsample_layers[s](h))
            feats.append(h.detach().numpy())
        logits = model(x)
        r = torch.randn_like(logits)
        (logits * r).sum().backward()
        np.savez_compressed(os.path.join(out, f"{case['name']}.npz"), input=x.detach().numpy(),
                            logits=logits.detach().numpy(), R=r.numpy(), grad_input=x.grad.numpy(),
                            **{f"stage{s}": f for s, f in enumerate(feats)})
        torch.save({"model": model.state_dict()}, os.path.join(out, f"{case['name']}.pth"))
        case["ref_max_abs"] = float(logits.abs().max())
    released = stl.biformer_stl()
    counts = {"params": sum(p.numel() for p in released.parameters())}
    try:
        from fvcore.nn import FlopCountAnalysis

        released.eval()
        counts["fvcore_flops_224"] = int(FlopCountAnalysis(released, torch.zeros(1, 3, 224, 224)).total())
    except ImportError:
        pass
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump({"official": "github.com/rayleizhu/BiFormer models/biformer_stl.py", "torch": torch.__version__,
                   "cases": CASES, "released_biformer_stl": counts}, f, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:3])
