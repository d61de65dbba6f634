"""Speed and memory of paddle-biformer, optionally side by side with the official PyTorch model.

    python benchmarks/bench_model.py                                  # ours only, default cases
    python benchmarks/bench_model.py --torch-ref /path/to/BiFormer    # ours vs official
    python benchmarks/bench_model.py --case 224:8 --steps 20 --json out.json
    python benchmarks/bench_model.py --gather --torch-ref /path/to/BiFormer

Method
* Each (framework, case, mode) measurement runs in a fresh process (this script with the hidden
  ``--worker`` flag, printing JSON), so peak memory starts clean and a paddle worker never
  imports torch (nor the reverse). The official model gets the keyword arguments our registry
  gives ours (``paddle_biformer.registry.model_config``): both run the same configuration.
* Inputs: the same seeded random float32 images and int64 labels (numpy) for both.
* Modes: ``forward`` (eval, no grad); ``train`` (forward, cross-entropy, backward, AdamW step,
  clear grads). ``--warmup`` untimed steps, then ``--steps`` steps timed one by one;
  throughput = batch / median step time.
* Peak memory (train): ``base`` = VmRSS after model, optimizer and data are built, before the
  first step (VmRSS after warm-up is kept in the JSON too). After warm-up the peak-RSS mark is
  reset (``5 > /proc/self/clear_refs``; if refused, the lifetime peak is used). Reported:
  VmHWM after the timed steps - ``base``: activations, gradients, optimizer state and allocator
  caches, not weights or inputs.
* Threads: ``configure_cpu(threads)`` for Paddle, ``torch.set_num_threads(threads)`` for torch.
* ``--rounds R`` (default 3): the measurements run R times, alternating the frameworks within
  each round, and the table shows the median over rounds (the spread min-max beside it), so a
  slow spell of a shared machine does not decide a ratio.
* ``--gather``: median ms per call of the routed K/V gather variants, same seeded inputs.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 0
# (label, n, p2, topk, w2, c_kv): routed K/V gather shapes of biformer_tiny at 224, batch 8.
GATHER_SHAPES = [("stage1 topk=1", 8, 49, 1, 64, 128), ("stage1 topk=4", 8, 49, 4, 64, 128),
                 ("stage2 topk=4", 8, 49, 4, 16, 256)]


def rss_mib(field: str = "VmRSS") -> float:
    """``field`` (VmRSS or VmHWM) of this process from /proc/self/status, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def random_batch(img_size: int, batch: int, num_classes: int):
    """Seeded random float32 images (batch, 3, S, S) and int64 labels, as numpy arrays."""
    import numpy as np

    rng = np.random.RandomState(SEED)
    images = rng.standard_normal((batch, 3, img_size, img_size)).astype("float32")
    return images, rng.randint(0, num_classes, size=(batch,)).astype("int64")


def make_step(model, x, y, mode, no_grad, cross_entropy, make_opt, clear_grads):
    """A no-argument callable running one forward (eval, no grad) or training step."""
    if mode == "forward":
        model.eval()

        def step():
            with no_grad():
                model(x)
        return step
    model.train()
    opt = make_opt()

    def step():
        cross_entropy(model(x), y).backward()
        opt.step()
        clear_grads(opt)
    return step


def build_paddle_step(a, images, labels):
    """One ``a.mode`` step of our model, built with create_model(arch, num_classes, img_size)."""
    import paddle
    from paddle_biformer import configure_cpu, create_model

    configure_cpu(a.threads)
    paddle.set_device("cpu")
    paddle.seed(SEED)
    model = create_model(a.arch, num_classes=a.num_classes, img_size=a.img_size)
    make_opt = lambda: paddle.optimizer.AdamW(1e-4, parameters=model.parameters(), weight_decay=0.05)  # noqa: E731
    return make_step(model, paddle.to_tensor(images), paddle.to_tensor(labels), a.mode, paddle.no_grad,
                     paddle.nn.functional.cross_entropy, make_opt, lambda opt: opt.clear_grad())


def build_official(a):
    """The official model of ``a.arch``'s family (torch, seeded) from the keyword arguments our
    registry gives ours (``a.config``, JSON)."""
    import torch

    sys.path.insert(0, os.path.join(REPO, "tools"))
    from official_ref import build_official_model

    torch.set_num_threads(a.threads)
    torch.manual_seed(SEED)
    config = json.loads(a.config)
    num_classes = config.pop("num_classes")
    return build_official_model(a.family, a.torch_ref, config, num_classes)


def build_torch_step(a, images, labels):
    """One ``a.mode`` step of the official model, built from our registry's keyword arguments."""
    import torch

    model = build_official(a)
    make_opt = lambda: torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)  # noqa: E731
    return make_step(model, torch.from_numpy(images), torch.from_numpy(labels), a.mode, torch.no_grad,
                     torch.nn.functional.cross_entropy, make_opt, lambda opt: opt.zero_grad())


def measure_model(a) -> dict:
    """Worker: build, warm up, time ``a.steps`` steps and measure peak RSS."""
    images, labels = random_batch(a.img_size, a.batch, a.num_classes)
    step = (build_paddle_step if a.framework == "paddle" else build_torch_step)(a, images, labels)
    base = rss_mib()
    for _ in range(a.warmup):
        step()
    after_warmup = rss_mib()
    peak_reset = reset_peak_rss()
    times = [_timed(step) for _ in range(a.steps)]
    return {"img_s": a.batch / statistics.median(times), "step_s": times,
            "base_rss_mib": base, "rss_after_warmup_mib": after_warmup,
            "peak_mib": rss_mib("VmHWM") - base, "peak_over_timed_steps_only": peak_reset}


def time_call(fn, reps: int, warmup: int = 3) -> float:
    """Median milliseconds of ``fn()`` over ``reps`` calls."""
    for _ in range(warmup):
        fn()
    return 1e3 * statistics.median(_timed(fn) for _ in range(reps))


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def gather_inputs(n, p2, topk, w2, c):
    """Seeded kv (n, p2, w2, c) float32 and distinct routing indices r_idx (n, p2, topk)."""
    import numpy as np

    rng = np.random.RandomState(SEED)
    kv = rng.standard_normal((n, p2, w2, c)).astype("float32")
    return kv, rng.rand(n, p2, p2).argsort(-1)[..., :topk].astype("int64")


def digest(array) -> str:
    """Short hash of an array's bytes, to compare results across processes."""
    return hashlib.sha1(array.tobytes()).hexdigest()[:12]


def measure_gather(a) -> dict:
    """Worker: ms per routed K/V gather call for every GATHER_SHAPES entry."""
    out = {}
    if a.framework == "paddle":
        import paddle
        from paddle_biformer import configure_cpu
        from paddle_biformer.ops import gather_windows

        configure_cpu(a.threads)
        for label, n, p2, topk, w2, c in GATHER_SHAPES:
            kv_np, idx_np = gather_inputs(n, p2, topk, w2, c)
            kv, r_idx = paddle.to_tensor(kv_np), paddle.to_tensor(idx_np)

            def seed_port():
                return paddle.take_along_axis(
                    kv.reshape((n, 1, p2, w2, c)).expand((-1, p2, -1, -1, -1)),
                    r_idx.reshape((n, p2, topk, 1, 1)).expand((-1, -1, -1, w2, c)), axis=2)

            def ours():
                return gather_windows(kv.reshape([n * p2, w2, c]), r_idx).reshape([n, p2, topk, w2, c])

            ref, new = seed_port().numpy(), ours().numpy()
            out[label] = {"seed_ms": time_call(seed_port, a.gather_reps), "ours_ms": time_call(ours, a.gather_reps),
                          "identical": bool((ref == new).all()), "digest": digest(new)}
    else:
        import torch

        sys.path.insert(0, os.path.join(REPO, "tools"))
        from official_ref import load_official

        torch.set_num_threads(a.threads)
        kv_gather = load_official(a.torch_ref).KVGather(mul_weight="none")
        for label, n, p2, topk, w2, c in GATHER_SHAPES:
            kv_np, idx_np = gather_inputs(n, p2, topk, w2, c)
            kv, r_idx = torch.from_numpy(kv_np), torch.from_numpy(idx_np)
            with torch.no_grad():
                fn = lambda: kv_gather(r_idx, None, kv)  # noqa: E731
                out[label] = {"official_ms": time_call(fn, a.gather_reps), "digest": digest(fn().numpy())}
    return out


def run_script_worker(script: str, args, label: str, **flags) -> dict:
    """Run ``script --worker`` with the common options and ``flags`` in a fresh interpreter
    (``--torch-python`` for the official model's workers); its last stdout line is the JSON
    result ({} if it failed, with its error tail printed)."""
    torch_worker = flags.get("framework") == "torch" or flags.get("runtime") == "official-torch"
    python = args.torch_python if torch_worker and args.torch_python else sys.executable
    cmd = [python, script, "--worker", "--threads", str(args.threads), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--arch", args.arch, "--num-classes", str(args.num_classes),
           "--family", args.family]
    cmd += ["--torch-ref", args.torch_ref] if args.torch_ref else []
    cmd += [s for key, value in flags.items() for s in (f"--{key.replace('_', '-')}", str(value))]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        print(f"[{label}] worker failed (rc={proc.returncode}):\n{tail}", file=sys.stderr)
        return {}
    return json.loads(lines[-1])


def run_worker(args, framework: str, **extra) -> dict:
    """One measurement of ``framework`` in a fresh interpreter."""
    return run_script_worker(os.path.abspath(__file__), args, f"{framework} {extra.get('mode', 'gather')}",
                             framework=framework, gather_reps=args.gather_reps, **extra)


def resolve_family(args) -> None:
    """args.arch as registered (aliases resolved) and args.family, from our registry."""
    from paddle_biformer.registry import get_model_entry, resolve_name

    args.arch = resolve_name(args.arch)
    args.family = get_model_entry(args.arch).family


def check_torch_ref(args):
    """Exit with a clear message if torch (in ``--torch-python``) or the official clone of the
    family of ``--arch`` is unusable; fills in args.family."""
    python = args.torch_python or sys.executable
    probe = subprocess.run([python, "-c", "import torch"], capture_output=True, text=True)
    if probe.returncode:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        sys.exit(f"--torch-ref given but torch is not importable by {python} ({last}); install torch "
                 "(CPU build) there, or name an interpreter that has it with --torch-python, or drop --torch-ref.")
    sys.path.insert(0, os.path.join(REPO, "tools"))
    from official_ref import check_clone

    problem = check_clone(args.family, args.torch_ref)
    if problem:
        sys.exit(f"--torch-ref: {problem}")


def load_warning(seconds: float = 1.0) -> str:
    """A warning line if other processes keep the CPUs busy now (from /proc/stat over ``seconds``)."""
    def ticks():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    (t0, i0), _, (t1, i1) = ticks(), time.sleep(seconds), ticks()
    busy = 1 - (i1 - i0) / max(1, t1 - t0)
    return f"WARNING: CPUs {busy:.0%} busy with other work at start; timings are unreliable.\n" \
        if busy > 0.2 else ""


def fmt(value, spec=".1f"):
    return "n/a" if value is None else format(value, spec)


def ratio(num, den):
    return f"{num / den:.2f}x" if num and den else "-"


def bench_models(args) -> list:
    """Measure every case; print the table; return rows for --json.

    Ours is built with create_model(arch, num_classes, img_size=S); the official model gets
    the keyword arguments our registry holds for that (model_config), so both are the same.
    """
    from paddle_biformer.registry import model_config

    rows, warning = [], load_warning()
    for case in args.case:
        img_size, batch = (int(v) for v in case.split(":"))
        config = json.dumps(dict(model_config(args.arch, img_size), num_classes=args.num_classes))
        runs = {}  # (framework, mode) -> one result per round
        for r in range(args.rounds):
            for framework in ["paddle"] + (["torch"] if args.torch_ref else []):
                for mode in ("forward", "train"):
                    print(f"  round {r + 1}/{args.rounds}: {framework} {mode} {img_size}:{batch} ...",
                          file=sys.stderr, flush=True)
                    runs.setdefault((framework, mode), []).append(run_worker(
                        args, framework, mode=mode, img_size=img_size, batch=batch, config=config))
        for metric, mode, key in (("forward img/s", "forward", "img_s"), ("train img/s", "train", "img_s"),
                                  ("train peak MiB", "train", "peak_mib")):
            ours, ours_spread = median_over_rounds(runs.get(("paddle", mode), []), key)
            official, official_spread = median_over_rounds(runs.get(("torch", mode), []), key)
            better = ratio(ours, official) if key == "img_s" else ratio(official, ours)
            rows.append({"case": f"{args.arch} {img_size}:{batch}", "metric": metric, "ours": ours,
                         "official": official, "ratio": better, "ours_range": ours_spread,
                         "official_range": official_spread,
                         "raw": {"ours": runs.get(("paddle", mode)), "official": runs.get(("torch", mode))}})
    print(f"\n{warning}{args.arch}, {args.threads} threads, {args.warmup} warm-up + {args.steps} timed steps, "
          f"median of {args.rounds} alternating rounds (min-max in brackets); img/s = batch / median "
          "step time; peak MiB = peak RSS over timed train steps - RSS before first step.\n"
          "ratio > 1 means ours is better (img/s: ours/official; MiB: official/ours).\n")
    print(f"{'case':<22}{'metric':<16}{'ours':>25}{'official':>25}{'ratio':>8}")
    for r in rows:
        print(f"{r['case']:<22}{r['metric']:<16}{spread(r['ours'], r['ours_range']):>25}"
              f"{spread(r['official'], r['official_range']):>25}{r['ratio']:>8}")
    return rows


def median_over_rounds(results: list, key: str):
    """(median, (min, max)) of ``key`` over the rounds that produced it; (None, None) if none."""
    values = [r[key] for r in results if r.get(key) is not None]
    if not values:
        return None, None
    return statistics.median(values), (min(values), max(values))


def spread(value, bounds) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f} [{bounds[0]:.1f}-{bounds[1]:.1f}]" if bounds and bounds[0] != bounds[1] else f"{value:.1f}"


def bench_gather(args) -> list:
    """Time the routed K/V gather variants; print the table; return rows for --json."""
    warning = load_warning()
    ours = run_worker(args, "paddle")
    official = run_worker(args, "torch") if args.torch_ref else {}
    print(f"\n{warning}routed K/V gather, ms per call (median of {args.gather_reps}), {args.threads} threads; "
          "(a) seed port take_along_axis, (b) ours gather_windows, (c) official torch.gather;\n"
          "a/b, c/b > 1: ours faster; (a)==(b): identical values; (b)==(c): identical bytes\n")
    print(f"{'shape (n=8, p2=49)':<30}{'(a) seed':>10}{'(b) ours':>10}{'(c) torch':>10}{'a/b':>8}{'c/b':>8}"
          "  (a)==(b)  (b)==(c)")
    rows = []
    for label, n, p2, topk, w2, c in GATHER_SHAPES:
        o, t = ours.get(label, {}), official.get(label, {})
        name = f"{label} w2={w2} c={c}"
        same_c = "-" if not t else str(t.get("digest") == o.get("digest"))
        print(f"{name:<30}{fmt(o.get('seed_ms'), '.3f'):>10}{fmt(o.get('ours_ms'), '.3f'):>10}"
              f"{fmt(t.get('official_ms'), '.3f'):>10}{ratio(o.get('seed_ms'), o.get('ours_ms')):>8}"
              f"{ratio(t.get('official_ms'), o.get('ours_ms')):>8}"
              f"  {str(o.get('identical')):<8}  {same_c}")
        rows.append({"shape": name, **{k: v for k, v in o.items() if k != "digest"},
                     "official_ms": t.get("official_ms"), "matches_official": same_c})
    return rows


def benchmark_parser(description: str, default_cases: list, num_classes: int, warmup: int,
                     internal: tuple) -> argparse.ArgumentParser:
    """The options both benchmark scripts share, plus the hidden worker options ``internal``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--arch", default="biformer_tiny")
    p.add_argument("--case", action="append",
                   help=f"IMG_SIZE:BATCH, repeatable (default {', '.join(default_cases)})")
    p.add_argument("--num-classes", type=int, default=num_classes)
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--rounds", type=int, default=3, help="alternating repetitions; the median is shown")
    p.add_argument("--warmup", type=int, default=warmup, help="untimed steps before timing")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="default: all CPUs")
    p.add_argument("--torch-ref", help="path to the official clone of --arch's family: also run the official model")
    p.add_argument("--torch-python", help="Python interpreter with torch for the official model's workers "
                                          "(default: this one)")
    p.add_argument("--family", help=argparse.SUPPRESS)
    p.add_argument("--json", help="also save the results to this file")
    for flag in internal:  # one measurement in a fresh process
        p.add_argument(flag, help=argparse.SUPPRESS)
    p.add_argument("--img-size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(default_cases=default_cases)
    return p


def parse_cases(p: argparse.ArgumentParser, args):
    """args with ``case`` defaulted and checked (IMG_SIZE:BATCH)."""
    args.case = args.case or args.default_cases
    for case in args.case:
        if not re.fullmatch(r"\d+:\d+", case):
            p.error(f"--case {case!r}: expected IMG_SIZE:BATCH, e.g. 224:8")
    return args


def parse_args():
    p = benchmark_parser(__doc__.split("\n")[0], ["224:8", "32:128"], num_classes=10, warmup=2,
                         internal=("--framework", "--mode", "--config"))
    p.add_argument("--gather", action="store_true", help="micro-benchmark the routed K/V gather instead")
    p.add_argument("--gather-reps", type=int, default=50)
    return parse_cases(p, p.parse_args())


def main():
    args = parse_args()
    sys.path.insert(0, REPO)
    if args.worker:
        print(json.dumps(measure_model(args) if args.mode else measure_gather(args)))
        return
    resolve_family(args)
    if args.torch_ref:
        args.torch_ref = os.path.abspath(args.torch_ref)
        check_torch_ref(args)
    rows = bench_gather(args) if args.gather else bench_models(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k in
                                ("arch", "case", "steps", "rounds", "warmup", "threads", "torch_ref",
                                 "gather", "gather_reps")},
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
