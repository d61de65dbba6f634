"""Compare training runs: top-1 after given minutes, and one chart of accuracy against time.

    python tools/compare_runs.py --run "BiFormer-T=benchmarks/cifar10_biformer_tiny.metrics.jsonl" \
        --run "CAS-ViT-XS=benchmarks/cifar10_casvit_xs.metrics.jsonl" --at 10 20 --plot docs/images/cifar10_families.png

For each run (LABEL=metrics.jsonl, as training writes it) prints the best test top-1 reached
within each of the --at minutes (wall clock, training + validation), the best and the final one.
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


def print_table(runs: dict, minutes) -> None:
    """Per run (label -> history): the best top-1 within each of ``minutes``, the best and the
    final top-1, and the run's minutes."""
    head = "".join(f"{f'top-1 at {m:g} min':>16}" for m in minutes)
    print(f"{'run':<22}{head}{'best':>8}{'final':>8}{'minutes':>9}")
    for label, history in runs.items():
        cells = "".join(f"{(f'{v:.2f}' if v is not None else '-'):>16}" for v in (top1_within(history, m) for m in minutes))
        best = max(r["val_top1"] for r in history)
        print(f"{label:<22}{cells}{best:>8.2f}{history[-1]['val_top1']:>8.2f}{history[-1]['elapsed_minutes']:>9.1f}")


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
    print_table(runs, args.at)
    if args.plot:
        from paddle_biformer.plots import plot_accuracy_vs_time

        print("wrote", plot_accuracy_vs_time(runs, args.plot, args.title, budget_minutes=max(args.at)))


if __name__ == "__main__":
    main()
