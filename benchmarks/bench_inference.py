"""Inference throughput of the exported model (Paddle Inference, ONNX Runtime) next to the
dynamic graph, optionally next to the official PyTorch model (eager, no grad).

    python benchmarks/bench_inference.py                                   # tiny, 224:1 224:8 32:128
    python benchmarks/bench_inference.py --case 224:16 --rounds 3 --json out.json
    python benchmarks/bench_inference.py --torch-ref /path/to/BiFormer     # + official PyTorch

Method
* For each case (IMG_SIZE:BATCH) the model (seeded random weights) is exported once with
  ``paddle_biformer.export.export_model`` (dynamic batch, with its own correctness check) to a
  temporary folder; every runtime then runs in a fresh process (this script with the hidden
  ``--worker`` flag), loading the exported files, so memory starts clean and runtimes do not share
  thread pools.
* Runtimes: ``dynamic`` (our dygraph model, eval, no grad, our C++ CPU kernels),
  ``paddle-inference`` (predictor, oneDNN), ``paddle-inference-no-onednn``, ``onnxruntime``
  (CPU provider, when installed), ``official-torch`` (with --torch-ref).
* The same seeded float32 batch for all; ``--warmup`` untimed runs, then ``--steps`` timed runs;
  img/s = batch / median run time. ``--rounds`` alternating repetitions, median shown (min-max).
* Peak MiB: peak RSS over the timed runs minus RSS before the first run (activations and
  runtime workspaces; not weights).
* Threads: ``--threads`` for every runtime (Paddle: configure_cpu / set_cpu_math_library_num_threads,
  ONNX Runtime: intra_op_num_threads, torch: set_num_threads).
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, REPO)

from bench_model import (SEED, _timed, benchmark_parser, build_official, check_torch_ref, resolve_family,  # noqa: E402
                         load_warning, median_over_rounds, parse_cases, random_batch, reset_peak_rss, rss_mib,
                         run_script_worker, spread)

RUNTIMES = ("dynamic", "paddle-inference", "paddle-inference-no-onednn", "onnxruntime", "official-torch")


def build_runner(a, images):
    """Worker: a no-argument callable running one forward of ``a.runtime`` on ``images``."""
    if a.runtime == "official-torch":
        import torch

        model = build_official(a).eval()
        x = torch.from_numpy(images)

        def run():
            with torch.no_grad():
                model(x)
        return run

    import paddle
    from paddle_biformer import configure_cpu
    from paddle_biformer.export import onnx_runner, paddle_inference_runner

    configure_cpu(a.threads)
    model_file = next(os.path.join(a.export_dir, f) for f in ("model.json", "model.pdmodel")
                      if os.path.isfile(os.path.join(a.export_dir, f)))
    params = os.path.join(a.export_dir, "model.pdiparams")
    if a.runtime == "dynamic":
        from paddle_biformer import create_model

        paddle.seed(SEED)
        model = create_model(a.arch, num_classes=a.num_classes, img_size=a.img_size)
        model.set_state_dict(paddle.load(os.path.join(a.export_dir, "weights.pdparams")))
        model.eval()
        x = paddle.to_tensor(images)

        def run():
            with paddle.no_grad():
                model(x)
        return run
    if a.runtime == "onnxruntime":
        fn = onnx_runner(os.path.join(a.export_dir, "model.onnx"), threads=a.threads)
    else:
        fn = paddle_inference_runner(model_file, params, threads=a.threads,
                                     mkldnn=a.runtime == "paddle-inference")
    return lambda: fn(images)


def measure(a) -> dict:
    images, _ = random_batch(a.img_size, a.batch, a.num_classes)
    run = build_runner(a, images)
    base = rss_mib()
    for _ in range(a.warmup):
        run()
    peak_reset = reset_peak_rss()
    times = [_timed(run) for _ in range(a.steps)]
    return {"img_s": a.batch / statistics.median(times), "step_s": times,
            "peak_mib": rss_mib("VmHWM") - base, "peak_over_timed_steps_only": peak_reset}


def run_worker(args, runtime: str, **extra) -> dict:
    """One measurement of ``runtime`` in a fresh interpreter."""
    return run_script_worker(os.path.abspath(__file__), args, runtime, runtime=runtime, **extra)


def export_case(args, img_size: int, folder: str) -> dict:
    """Export the seeded model at ``img_size`` (dynamic batch) into ``folder``; its weights too."""
    import paddle
    from paddle_biformer import configure_cpu, create_model
    from paddle_biformer.export import export_model

    configure_cpu(args.threads)
    paddle.seed(SEED)
    model = create_model(args.arch, num_classes=args.num_classes, img_size=img_size)
    report = export_model(model, folder, img_size, onnx=args.onnx)
    paddle.save(model.state_dict(), os.path.join(folder, "weights.pdparams"))
    return report


def bench(args) -> list:
    from paddle_biformer.registry import model_config

    runtimes = ["dynamic", "paddle-inference", "paddle-inference-no-onednn"]
    runtimes += ["onnxruntime"] if args.onnx else []
    runtimes += ["official-torch"] if args.torch_ref else []
    rows, warning = [], load_warning()
    for case in args.case:
        img_size, batch = (int(v) for v in case.split(":"))
        folder = tempfile.mkdtemp(prefix="bench-export-")
        try:
            print(f"  exporting {args.arch} at {img_size} ...", file=sys.stderr, flush=True)
            report = export_case(args, img_size, folder)
            config = json.dumps(dict(model_config(args.arch, img_size), num_classes=args.num_classes))
            runs = {}
            for r in range(args.rounds):
                for runtime in runtimes:
                    print(f"  round {r + 1}/{args.rounds}: {runtime} {case} ...", file=sys.stderr, flush=True)
                    runs.setdefault(runtime, []).append(run_worker(
                        args, runtime, img_size=img_size, batch=batch, export_dir=folder, config=config))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        dynamic, _ = median_over_rounds(runs["dynamic"], "img_s")
        for runtime in runtimes:
            img_s, img_s_range = median_over_rounds(runs[runtime], "img_s")
            mib, mib_range = median_over_rounds(runs[runtime], "peak_mib")
            rows.append({"case": f"{args.arch} {case}", "runtime": runtime, "img_s": img_s,
                         "img_s_range": img_s_range, "peak_mib": mib, "peak_mib_range": mib_range,
                         "vs_dynamic": f"{img_s / dynamic:.2f}x" if img_s and dynamic else "-",
                         "check": {k: report.get(k, {}).get("max_abs_diff") for k in ("paddle_inference", "onnxruntime")},
                         "raw": runs[runtime]})
    print(f"\n{warning}{args.arch}, {args.threads} threads, {args.warmup} warm-up + {args.steps} timed runs, "
          f"median of {args.rounds} alternating rounds (min-max); img/s = batch / median run time; "
          "peak MiB = peak RSS over the timed runs - RSS before the first run.\n")
    print(f"{'case':<22}{'runtime':<28}{'img/s':>22}{'peak MiB':>22}{'vs dynamic':>12}")
    for r in rows:
        print(f"{r['case']:<22}{r['runtime']:<28}{spread(r['img_s'], r['img_s_range']):>22}"
              f"{spread(r['peak_mib'], r['peak_mib_range']):>22}{r['vs_dynamic']:>12}")
    return rows


def parse_args():
    p = benchmark_parser(__doc__.split("\n")[0], ["224:1", "224:8", "32:128"], num_classes=1000, warmup=3,
                         internal=("--runtime", "--config", "--export-dir"))
    return parse_cases(p, p.parse_args())


def main():
    args = parse_args()
    if args.worker:
        print(json.dumps(measure(args)))
        return
    try:
        import onnxruntime  # noqa: F401
        import paddle2onnx  # noqa: F401
        args.onnx = True
    except ImportError:
        args.onnx = False
        print("note: paddle2onnx/onnxruntime not installed: ONNX Runtime not measured "
              "(python install.py --export)", file=sys.stderr)
    resolve_family(args)
    if args.torch_ref:
        args.torch_ref = os.path.abspath(args.torch_ref)
        check_torch_ref(args)
    rows = bench(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items()
                                if k in ("arch", "case", "steps", "rounds", "warmup", "threads", "torch_ref")},
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
