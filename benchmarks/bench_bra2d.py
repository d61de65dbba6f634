"""Speed and memory of BRA2d (paddle-biformer) next to the official BiLevelRoutingAttention.

    python benchmarks/bench_bra2d.py                                         # ours only
    python benchmarks/bench_bra2d.py --torch-ref /path/to/BiFormer           # ours vs official
    python benchmarks/bench_bra2d.py --torch-ref BiFormer --torch-python /path/to/torch/env/python
    python benchmarks/bench_bra2d.py --only main --rounds 1 --steps 3        # a quick look

Tables
* ``main``: a YOLO P3 map at 640 px, 1x256x80x80, 8 heads, topk 4, LePE 3x3, with a fixed
  n_win=7 (what a copied ``bra_legacy`` is usually given; the map is padded to 84x84) and with
  region_size=8 (10x10 regions of 8x8; the official layer with n_win=10).
  forward (eval, no grad) and train (forward + backward of sum(out * cotangent)).
* ``regions``: forward + backward, 8 heads, topk 4, 8x8-pixel regions, 4..20 regions per side
  (maps 1x64x32x32 .. 1x64x160x160): ours grows with the map (linearly in the number of
  regions p2, per pixel constant), the official with p2^2: its gather backward materialises a
  (N, p2, p2, w2, c_qk + c_v) gradient of the p2-times expanded keys/values.
* ``topk``: forward + backward on 1x64x80x80, 10x10 regions of 8x8, topk 1..16: both grow
  with topk (gathered keys/values and attention weights are proportional to it).
* ``large``: the map of the official issue #21 (1x20x600x500, 4 heads, topk 4): ours with
  region_size=8 (75x63 regions), forward and forward + backward. The official is not run
  there: its peak is estimated (``official_estimate_mib``: the formula below, checked against
  its measured peaks in the other tables), ~270 GB for training with the same 75x63 regions
  (as n_win=75: its grid must be square), dominated by the p2^2 gather gradient; and with a
  fixed n_win=7 (regions of 86x72 pixels) one copy of the attention weights alone is
  heads * H*W * topk * 6192 floats = 111 GiB, the ~100 GB of issue #21. That term is the
  same for any implementation that materialises the attention weights, ours included:
  on large maps use region_size, which keeps memory linear in H*W.

Method (as bench_model.py, whose helpers this script imports)
* Every (framework, case, mode) measurement runs in a fresh process (this script with the
  hidden ``--worker`` flag, printing JSON): ours with this interpreter, the official with
  ``--torch-python`` (default: this interpreter), so Paddle and torch never share a process.
* Ours: ``BRA2d`` on the NCHW map. Official: ``BiLevelRoutingAttention(auto_pad=True)`` with the
  square n_win our grid has on that map, wrapped as a CNN uses it: permute to NHWC, the layer,
  permute back (the permutes are timed). Same seeded random input and cotangent (numpy).
* ``--warmup`` untimed steps, then ``--steps`` timed ones; ms = median step. Peak MiB = peak RSS
  (VmHWM) over the timed steps minus RSS before the first step (the layer and input are
  built): activations, gradients, workspace; not weights or inputs.
* ``--rounds R``: every measurement R times, frameworks alternating; median over rounds, min-max
  in brackets.
* The official is only started where its estimated peak is under ``--official-limit-gib``
  (default 8); otherwise the table says "skipped" with the estimate. Estimate (bytes, float32):
  4 * N * p2 * [A * heads * w2 * topk * w2 + 3 * topk * w2 * c_kv + (train) p2 * w2 * c_kv],
  p2 = regions, w2 = pixels per (padded) region, c_kv = qk_dim + dim: A = 2 (forward: logits
  and softmax) or 3 (train: softmax output, its gradient and the logits' gradient) copies of
  the attention weights, the gathered keys/values (and their head-major copies), and in the
  backward torch.gather's gradient of the p2-times expanded key/value view. Where the official
  runs and peaks above 200 MiB, the estimate is 0.8-1.5x the measured peak (below, allocator
  overhead dominates).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_model import (SEED, _timed, fmt, load_warning, median_over_rounds, ratio,  # noqa: E402
                         reset_peak_rss, rss_mib, spread)

MIB = 1024 * 1024


def make_cases(only=None) -> list:
    """(table, label, case) triples; a case: n, c, h, w, heads, topk and n_win or region_size."""
    cases = []
    base = dict(n=1, c=256, h=80, w=80, heads=8, topk=4)
    if only in (None, "main"):
        cases += [("main", "1x256x80x80 n_win=7", dict(base, n_win=7)),
                  ("main", "1x256x80x80 region_size=8", dict(base, region_size=8))]
    small = dict(n=1, c=64, h=80, w=80, heads=8, topk=4)
    if only in (None, "regions"):
        cases += [("regions", f"1x64x{8 * r}x{8 * r}, {r}x{r} regions", dict(small, h=8 * r, w=8 * r, n_win=r))
                  for r in (4, 6, 8, 10, 12, 16, 20)]
    if only in (None, "topk"):
        cases += [("topk", f"1x64x80x80, topk {k}", dict(small, n_win=10, topk=k)) for k in (1, 2, 4, 8, 16)]
    if only in (None, "large"):
        cases += [("large", "1x20x600x500 region_size=8", dict(n=1, c=20, h=600, w=500, heads=4, topk=4,
                                                                 region_size=8))]
    return cases


def modes_of(table: str) -> tuple:
    return ("forward", "train") if table in ("main", "large") else ("train",)


def geometry(case: dict) -> dict:
    """The grid BRA2d uses on this map, and the official square n_win equal to it (or None)."""
    h, w = case["h"], case["w"]
    if "n_win" in case:
        nh = nw = case["n_win"]
    else:
        nh, nw = -(-h // case["region_size"]), -(-w // case["region_size"])
    wh, ww = -(-h // nh), -(-w // nw)
    return {"grid": [nh, nw], "region_px": [wh, ww], "p2": nh * nw, "w2": wh * ww,
            "topk": min(case["topk"], nh * nw), "official_n_win": nh if nh == nw else None}


def official_estimate_mib(case: dict, mode: str, n_win: int | None = None) -> float:
    """Estimated peak MiB of the official layer (see the module docstring), for its square
    n_win (default: the grid's rows)."""
    g = geometry(case)
    nw = n_win or g["grid"][0]
    wh, ww = -(-case["h"] // nw), -(-case["w"] // nw)
    p2, w2, c_kv = nw * nw, wh * ww, 2 * case["c"]
    topk = min(case["topk"], p2)
    attention = case["heads"] * w2 * topk * w2
    per_region = (2 if mode == "forward" else 3) * attention + 3 * topk * w2 * c_kv
    if mode == "train":
        per_region += p2 * w2 * c_kv
    return 4 * case["n"] * p2 * per_region / MIB


# ----------------------------------------------------------------------------- workers
def build_paddle(case: dict, threads: int):
    import paddle

    from paddle_biformer import configure_cpu
    from paddle_biformer.bra2d import BRA2d

    configure_cpu(threads)
    paddle.set_device("cpu")
    paddle.seed(SEED)
    grid = {"n_win": case["n_win"]} if "n_win" in case else {"region_size": case["region_size"]}
    layer = BRA2d(case["c"], num_heads=case["heads"], topk=case["topk"], side_dwconv=3, **grid)
    return layer, paddle.to_tensor, paddle.no_grad, lambda: layer.clear_gradients()


def build_torch(case: dict, threads: int, torch_ref: str):
    import torch

    sys.path.insert(0, os.path.join(REPO, "tools"))
    from official_ref import load_official

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    n_win = geometry(case)["official_n_win"]
    bra = load_official(torch_ref).BiLevelRoutingAttention(
        dim=case["c"], num_heads=case["heads"], n_win=n_win, topk=min(case["topk"], n_win * n_win),
        side_dwconv=3, auto_pad=True)

    class NCHW(torch.nn.Module):  # how a CNN uses the official NHWC layer
        def __init__(self):
            super().__init__()
            self.bra = bra

        def forward(self, x):
            return self.bra(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    layer = NCHW()
    return layer, torch.from_numpy, torch.no_grad, lambda: layer.zero_grad(set_to_none=True)


def measure(a) -> dict:
    """Worker: build, warm up, time ``a.steps`` steps, peak RSS over them."""
    import numpy as np

    case = json.loads(a.case_json)
    rng = np.random.RandomState(SEED)
    x_np = rng.standard_normal((case["n"], case["c"], case["h"], case["w"])).astype("float32")
    cot_np = rng.standard_normal(x_np.shape).astype("float32")
    if a.framework == "paddle":
        layer, tensor, no_grad, clear = build_paddle(case, a.threads)
    else:
        layer, tensor, no_grad, clear = build_torch(case, a.threads, a.torch_ref)
    x, cot = tensor(x_np), tensor(cot_np)
    if a.mode == "forward":
        layer.eval()

        def step():
            with no_grad():
                layer(x)
    else:
        layer.train()
        if a.framework == "paddle":
            x.stop_gradient = False
        else:
            x.requires_grad_(True)

        def step():
            (layer(x) * cot).sum().backward()
            clear()
            if a.framework == "torch":
                x.grad = None
            else:
                x.clear_gradient()
    base = rss_mib()
    for _ in range(a.warmup):
        step()
    peak_reset = reset_peak_rss()
    times = [_timed(step) for _ in range(a.steps)]
    return {"ms": 1e3 * statistics.median(times), "step_s": times, "base_rss_mib": base,
            "peak_mib": rss_mib("VmHWM") - base, "peak_over_timed_steps_only": peak_reset}


def run_worker(args, framework: str, case: dict, mode: str) -> dict:
    """One measurement in a fresh interpreter; {} (with the error tail printed) if it failed."""
    python = sys.executable if framework == "paddle" else args.torch_python
    cmd = [python, os.path.abspath(__file__), "--worker", "--framework", framework, "--mode", mode,
           "--case-json", json.dumps(case), "--threads", str(args.threads), "--steps", str(args.steps),
           "--warmup", str(args.warmup)]
    cmd += ["--torch-ref", args.torch_ref] if args.torch_ref else []
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        print(f"[{framework} {mode} {case}] worker failed (rc={proc.returncode}):\n{tail}", file=sys.stderr)
        return {}
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------- driver
def bench(args) -> list:
    limit_mib = args.official_limit_gib * 1024
    runs, rows = {}, []
    cases = make_cases(args.only)
    for r in range(args.rounds):
        for table, label, case in cases:
            g = geometry(case)
            for mode in modes_of(table):
                frameworks = ["paddle"]
                if args.torch_ref and g["official_n_win"] and table != "large" \
                        and official_estimate_mib(case, mode) <= limit_mib:
                    frameworks.append("torch")
                for framework in frameworks:
                    print(f"  round {r + 1}/{args.rounds}: {framework} {mode} {label} ...", file=sys.stderr, flush=True)
                    runs.setdefault((label, mode, framework), []).append(run_worker(args, framework, case, mode))
    for table, label, case in cases:
        g = geometry(case)
        for mode in modes_of(table):
            row = {"table": table, "case": label, "mode": mode, **g, "shape": [case[k] for k in "nchw"],
                   "heads": case["heads"], "official_estimate_mib": official_estimate_mib(case, mode)}
            if table == "large":
                row["official_n_win7_estimate_mib"] = official_estimate_mib(case, mode, n_win=7)
            for key, framework in (("ours", "paddle"), ("official", "torch")):
                results = runs.get((label, mode, framework), [])
                for metric in ("ms", "peak_mib"):
                    row[f"{key}_{metric}"], row[f"{key}_{metric}_range"] = median_over_rounds(results, metric)
                row[f"{key}_raw"] = results or None
            rows.append(row)
    return rows


def print_tables(rows, args, warning=""):
    print(f"\n{warning}BRA2d vs official BiLevelRoutingAttention(auto_pad=True), {args.threads} threads, "
          f"{args.warmup} warm-up + {args.steps} timed steps, median of {args.rounds} round(s) [min-max]; "
          "ms per step; peak MiB over the timed steps minus RSS before the first; train = forward + backward.\n"
          "x faster / x less: official / ours. 'est' = the official's estimated peak (not run where "
          f"over {args.official_limit_gib} GiB or not expressible: rectangular grids).\n")
    for table in ("main", "regions", "topk", "large"):
        sel = [r for r in rows if r["table"] == table]
        if not sel:
            continue
        print(f"[{table}]")
        print(f"{'case':<30}{'mode':<9}{'grid':>7}{'ours ms':>20}{'official ms':>20}{'faster':>8}"
              f"{'ours MiB':>18}{'official MiB':>18}{'est MiB':>11}{'less':>8}")
        for r in sel:
            off_ms = spread(r["official_ms"], r["official_ms_range"]) if r["official_ms"] else "skipped"
            off_mib = spread(r["official_peak_mib"], r["official_peak_mib_range"]) if r["official_peak_mib"] else "skipped"
            print(f"{r['case']:<30}{r['mode']:<9}{'x'.join(map(str, r['grid'])):>7}"
                  f"{spread(r['ours_ms'], r['ours_ms_range']):>20}{off_ms:>20}{ratio(r['official_ms'], r['ours_ms']):>8}"
                  f"{spread(r['ours_peak_mib'], r['ours_peak_mib_range']):>18}{off_mib:>18}"
                  f"{fmt(r['official_estimate_mib'], '.0f'):>11}{ratio(r['official_peak_mib'], r['ours_peak_mib']):>8}")
            if table == "large":
                print(f"{'':<39}official with n_win=7 on this map (86x72-pixel regions): est "
                      f"{r['official_n_win7_estimate_mib'] / 1024:.0f} GiB")
        print()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--torch-ref", help="path to the official BiFormer clone: also run the official layer")
    p.add_argument("--torch-python", default=sys.executable,
                   help="interpreter with torch + einops for the official layer (default: this one)")
    p.add_argument("--only", choices=["main", "regions", "topk", "large"], help="one table only")
    p.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    p.add_argument("--rounds", type=int, default=3, help="alternating repetitions; the median is shown")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="default: all CPUs")
    p.add_argument("--official-limit-gib", type=float, default=8.0,
                   help="do not start the official layer where its estimated peak is above this")
    p.add_argument("--json", help="also save the results to this file")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--framework", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--case-json", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main():
    args = parse_args()
    sys.path.insert(0, REPO)
    if args.worker:
        print(json.dumps(measure(args)))
        return
    if args.torch_ref:
        args.torch_ref = os.path.abspath(args.torch_ref)
        probe = subprocess.run([args.torch_python, "-c", "import torch, einops"], capture_output=True, text=True)
        if probe.returncode:
            sys.exit(f"--torch-ref given but {args.torch_python} cannot import torch and einops "
                     f"({(probe.stderr.strip().splitlines() or ['?'])[-1]}); pass --torch-python")
        if not os.path.isfile(os.path.join(args.torch_ref, "ops", "bra_legacy.py")):
            sys.exit(f"--torch-ref {args.torch_ref!r} is not a BiFormer clone (no ops/bra_legacy.py)")
    warning = load_warning()
    rows = bench(args)
    print_tables(rows, args, warning)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k in
                                ("only", "steps", "warmup", "rounds", "threads", "official_limit_gib", "torch_ref")},
                       "load_warning_at_start": warning.strip() or None, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
