"""Compare training runs: top-1 after given minutes, and one chart of accuracy against time.

    python tools/compare_runs.py --run "BiFormer-T=benchmarks/cifar10_biformer_tiny.metrics.jsonl" \
        --run "CAS-ViT-XS=benchmarks/cifar10_casvit_xs.metrics.jsonl" --at 10 20 --plot docs/images/cifar10_families.png

For each run (LABEL=metrics.jsonl, as training writes it) prints the best test top-1 reached
within each of the --at minutes (wall clock, training + validation) and the final one.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(path):
    """The records of a metrics.jsonl; logs written before ``elapsed_minutes`` existed get it
    from their cumulative ``epoch_seconds`` (training + validation of each epoch)."""
    with open(path) as f:
        history = [json.loads(line) for line in f if line.strip()]
    total = 0.0
    for r in history:
        total += r.get("epoch_seconds", 0.0)
        r.setdefault("elapsed_minutes", total / 60)
    return history


def top1_within(history, minutes):
    """Best val top-1 of the epochs that ended within ``minutes``, or None."""
    done = [r["val_top1"] for r in history if r["elapsed_minutes"] <= minutes + 1e-9]
    return max(done) if done else None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", required=True, metavar="LABEL=METRICS.jsonl")
    p.add_argument("--at", nargs="+", type=float, default=[10, 20], metavar="MINUTES")
    p.add_argument("--plot", help="write the chart here (PNG)")
    p.add_argument("--title")
    args = p.parse_args()
    runs = {}
    for item in args.run:
        label, _, path = item.partition("=")
        runs[label] = read(path)
    head = "".join(f"{f'top-1 at {m:g} min':>16}" for m in args.at)
    print(f"{'run':<22}{head}{'final':>10}{'minutes':>10}")
    for label, history in runs.items():
        cells = "".join(f"{(f'{v:.2f}' if v is not None else '-'):>16}" for v in (top1_within(history, m) for m in args.at))
        print(f"{label:<22}{cells}{history[-1]['val_top1']:>10.2f}{history[-1]['elapsed_minutes']:>10.1f}")
    if args.plot:
        from paddle_biformer.plots import plot_accuracy_vs_time

        print("wrote", plot_accuracy_vs_time(runs, args.plot, args.title, budget_minutes=max(args.at)))


if __name__ == "__main__":
    main()
