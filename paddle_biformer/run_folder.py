"""A training run's folder: what is in it, refusing to mix two runs, and the files written
after every epoch (metrics.jsonl, learning curves, VisualDL logs, model_info.json).

Files of the seed notebook's names: ``best_model.pdparams`` / ``best_optimizer.pdopt``,
``final_model.pdparams`` / ``final_optimizer.pdopt``; ``last.pdckpt`` resumes the run.
"""
from __future__ import annotations

import json
import os
import shutil
import time

from .checkpoint import atomic_write

__all__ = ["RunFolder", "LAST", "MODEL_INFO", "METRICS", "RUN_FILES"]

LAST = "last.pdckpt"
MODEL_INFO = "model_info.json"
METRICS = "metrics.jsonl"
# everything a run writes (moved aside together by --overwrite)
RUN_FILES = (LAST, MODEL_INFO, METRICS, "best_model.pdparams", "best_optimizer.pdopt",
             "final_model.pdparams", "final_optimizer.pdopt", "loss_curve.png", "acc_curve.png", "vdl")


class RunFolder:
    """The ``--output`` folder of one run."""

    def __init__(self, path: str):
        self.root = path

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def existing_files(self) -> list:
        return [name for name in RUN_FILES if os.path.exists(self.path(name))]

    def describe_existing(self) -> str:
        """'a run of biformer_tiny, 3 of 50 epochs done, best top-1 61.2%' or what files it has."""
        history = self.read_metrics()
        info = {}
        if os.path.isfile(self.path(MODEL_INFO)):
            try:
                with open(self.path(MODEL_INFO)) as f:
                    info = json.load(f)
            except (OSError, ValueError):
                info = {}
        parts = [f"a run of {info['arch']}" if info.get("arch") else "a run"]
        if history:
            parts.append(f"{history[-1].get('epoch', len(history))} epochs done")
            best = max((r.get("val_top1", -1) for r in history), default=-1)
            if best >= 0:
                parts.append(f"best top-1 {best:.2f}%")
        else:
            parts.append(f"files {', '.join(self.existing_files())}")
        return ", ".join(parts)

    def check_new_run(self, overwrite: bool) -> str | None:
        """Before a new (not resumed) run: raise FileExistsError if the folder holds another
        run, unless ``overwrite``, in which case that run's files are moved to
        ``replaced-<time>/`` in the folder (returned). Nothing is ever deleted."""
        found = self.existing_files()
        if not found:
            return None
        if not overwrite:
            raise FileExistsError(
                f"--output {self.root!r} already holds {self.describe_existing()}. Continue it with "
                "--resume auto (add --epochs N --extend to train it longer), choose another --output, "
                "or pass --overwrite to start over (the old files are moved to a replaced-<time>/ "
                "folder inside it, not deleted)")
        backup = self.path(time.strftime("replaced-%Y%m%d-%H%M%S"))
        os.makedirs(backup, exist_ok=False)
        for name in found:
            shutil.move(self.path(name), os.path.join(backup, name))
        return backup

    def check_writable(self) -> None:
        """An OSError-free, one-line PermissionError if the folder cannot be created or written."""
        try:
            os.makedirs(self.root, exist_ok=True)
            probe = self.path(f".write-test-{os.getpid()}")
            with open(probe, "w") as f:
                f.write("ok")
            os.remove(probe)
        except OSError as e:
            raise PermissionError(f"cannot write to --output {self.root!r} ({e.strerror or e}); "
                                  "choose a folder you can write to") from None

    # -- metrics
    def read_metrics(self) -> list:
        try:
            with open(self.path(METRICS)) as f:
                return [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError):
            return []

    def write_metrics(self, history: list) -> None:
        """Rewrite metrics.jsonl from ``history`` (one line per epoch), atomically: after a resume
        the file holds exactly the epochs of the checkpoint, never a line twice."""
        def write(tmp):
            with open(tmp, "w") as f:
                for record in history:
                    f.write(json.dumps(record) + "\n")
        atomic_write(self.path(METRICS), write)

    def append_metrics(self, record: dict) -> None:
        with open(self.path(METRICS), "a") as f:
            f.write(json.dumps(record) + "\n")
