"""Official reference outputs for BRA2d on CNN-style maps (tests/fixtures/bra2d).

    /path/to/torch/python tools/make_bra2d_fixtures.py --torch-ref /path/to/BiFormer

Runs the official BiLevelRoutingAttention(auto_pad=True) (NHWC) and Block(auto_pad=True)
(NCHW) on map sizes that n_win does not divide, with the grids BRA2d uses for n_win=7 and for
region_size=8 (n_win = ceil(size / 8)), through tools/parity_fuzz.run_official: same format
and perturbed weights as the other fixtures (modules.json + modules.npz, see
tests/fixtures/official/README.md).
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "tests", "fixtures", "bra2d")

BRA = dict(kv_downsample_mode="identity", param_attention="qkvo", auto_pad=True)
# name, kind, official kwargs, input shape (NHWC for bra, NCHW for block), the BRA2d grid
# argument that gives the official n_win on that input
CASES = [
    ("bra_13x17_nwin7", "bra", dict(dim=64, num_heads=8, n_win=7, topk=4, side_dwconv=3, **BRA), [1, 13, 17, 64],
     dict(n_win=7)),
    ("bra_20x20_region8", "bra", dict(dim=16, num_heads=2, n_win=3, topk=2, side_dwconv=3, **BRA), [1, 20, 20, 16],
     dict(region_size=8)),
    ("bra_13x17_region8_topk_all", "bra", dict(dim=16, num_heads=1, n_win=2, topk=4, side_dwconv=5, **BRA),
     [1, 13, 17, 16], dict(region_size=(7, 9))),
    ("bra_11x9_qkdim_soft", "bra", dict(dim=32, num_heads=4, n_win=3, qk_dim=16, topk=2, side_dwconv=3,
                                       param_routing=True, diff_routing=True, soft_routing=True, **BRA),
     [1, 11, 9, 32], dict(region_size=4)),
    ("block_13x17_nwin7", "block", dict(dim=32, num_heads=4, n_win=7, qk_dim=32, topk=4, mlp_ratio=3,
                                        side_dwconv=3, before_attn_dwconv=3, kv_downsample_mode="identity",
                                        auto_pad=True), [1, 32, 13, 17], dict(n_win=7)),
    ("block_20x20_region8", "block", dict(dim=16, num_heads=2, n_win=3, qk_dim=16, topk=3, mlp_ratio=2,
                                          side_dwconv=5, before_attn_dwconv=3, kv_downsample_mode="identity",
                                          auto_pad=True), [1, 16, 20, 20], dict(region_size=8)),
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--torch-ref", required=True, help="folder of the official BiFormer clone")
    p.add_argument("--out", default=OUT)
    args = p.parse_args()
    import torch
    sys.path.insert(0, HERE)
    from official_ref import load_official
    from parity_fuzz import run_official
    ref = load_official(args.torch_ref)
    cases, arrays = [], {}
    for i, (name, kind, kwargs, shape, grid) in enumerate(CASES):
        case = dict(name=name, kind=kind, kwargs=kwargs, input_shape=shape,
                    layout="NHWC" if kind == "bra" else "NCHW", bra2d_grid=grid)
        arrays.update({f"{name}/{k}": v for k, v in run_official(ref, torch, case, 1000 + i).items()})
        cases.append(case)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "modules.json"), "w") as f:
        json.dump(cases, f, indent=1)
    np.savez_compressed(os.path.join(args.out, "modules.npz"), **arrays)
    print(f"wrote {len(cases)} cases to {args.out}")


if __name__ == "__main__":
    main()
