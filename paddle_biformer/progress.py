"""Progress for long work: tqdm bars in terminals and notebooks, periodic lines in log files,
and the whole run's estimated time.
"""
from __future__ import annotations

import sys
import time

__all__ = ["progress", "interactive", "RunClock", "format_duration"]


def interactive() -> bool:
    """True in a terminal or a Jupyter/AI Studio notebook."""
    return "ipykernel" in sys.modules or bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress(iterable, total=None, desc=None, enabled: bool = True, **kwargs):
    """``tqdm(iterable)`` when interactive and ``enabled``, else a bar that shows nothing."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not (enabled and interactive()),
                leave=False, dynamic_ncols=True, mininterval=0.5, **kwargs)


def format_duration(seconds: float) -> str:
    """'45s', '12m05s', '3h20m', '12d 4h'."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


class RunClock:
    """The whole run's progress and estimated time left.

    Training steps are timed as they complete (the first ``skip`` of the process are left out:
    they include one-off start-up work); a validation pass is costed at the measured time once
    one ran, else at a third of a training step per batch (a forward pass).

    ``train_steps``/``val_steps``: batches per epoch; ``epochs``: planned; ``done_epochs``,
    ``done_steps``: where the run starts (resume).
    """

    def __init__(self, epochs: int, train_steps: int, val_steps: int, done_epochs: int = 0,
                 done_steps: int = 0, skip: int = 2):
        self.epochs, self.train_steps, self.val_steps = epochs, train_steps, val_steps
        self.epoch, self.step = done_epochs, done_steps
        self.skip = skip
        self.timed_steps, self.step_seconds = 0, 0.0
        self.val_seconds = None
        self._last = None

    def start_step(self):
        self._last = time.perf_counter()

    def end_step(self, epoch: int, step: int):
        """Record that ``step`` (1-based count in ``epoch``) completed."""
        now = time.perf_counter()
        if self._last is not None:
            if self.skip > 0:
                self.skip -= 1
            else:
                self.timed_steps += 1
                self.step_seconds += now - self._last
        self._last = None
        self.epoch, self.step = epoch, step

    def end_validation(self, seconds: float):
        self.val_seconds = seconds

    @property
    def seconds_per_step(self) -> float | None:
        return self.step_seconds / self.timed_steps if self.timed_steps else None

    def fraction_done(self) -> float:
        total = self.epochs * self.train_steps
        return min(1.0, (self.epoch * self.train_steps + self.step) / max(1, total))

    def remaining(self) -> tuple:
        """(seconds left in this epoch's training, seconds left in the run), or (None, None)
        before any step was timed."""
        per_step = self.seconds_per_step
        if per_step is None:
            return None, None
        val = self.val_seconds if self.val_seconds is not None else per_step / 3 * self.val_steps
        epoch_left = (self.train_steps - self.step) * per_step
        later_epochs = max(0, self.epochs - self.epoch - 1)
        run_left = epoch_left + val + later_epochs * (self.train_steps * per_step + val)
        return epoch_left, run_left

    def eta_text(self) -> str:
        epoch_left, run_left = self.remaining()
        if run_left is None:
            return "ETA: timing the first steps"
        return f"ETA epoch {format_duration(epoch_left)}, run {format_duration(run_left)}"
