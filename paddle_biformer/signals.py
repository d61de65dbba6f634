"""Stopping a training run only between two steps.

A Ctrl-C (SIGINT) or SIGTERM that arrived in the middle of a step used to raise
KeyboardInterrupt wherever Python happened to be: between ``optimizer.step()`` and the step
counter (the saved state then replayed a step on resume), or inside a C++ operator's backward
(Paddle turned it into an ``OSError`` and nothing was saved). :class:`StopRequests` only records
the signal; the training loop asks :meth:`StopRequests.requested` at step boundaries, where the
state is consistent, saves and stops. A second Ctrl-C stops at once (the files of the last
completed save are intact: every save is atomic).
"""
from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["StopRequests"]


class StopRequests:
    """Context manager catching SIGINT/SIGTERM in the main thread while training.

    ``requested()``: a stop was asked for in this process, or (data parallel) in any process:
    the flag is summed over processes so they all stop after the same step.
    """

    def __init__(self, world_size: int = 1, announce: bool = True):
        self.world_size, self.announce = world_size, announce
        self.signum = None
        self._previous = {}

    def _handle(self, signum, frame):
        if os.getpid() != self._pid:  # a forked DataLoader worker: the main process decides
            return
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self.signum = signum
        if self.announce:
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            print(f"\n{name}: stopping after the current step and saving (Ctrl-C again to stop "
                  "at once; the last saved checkpoint stays valid)", file=sys.stderr, flush=True)

    def __enter__(self):
        self._pid = os.getpid()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        return False

    def requested(self) -> bool:
        """Whether to stop now; in a data-parallel run, the same answer in every process."""
        local = self.signum is not None
        if self.world_size <= 1:
            return local
        import paddle
        import paddle.distributed as dist

        flag = paddle.to_tensor([1 if local else 0], dtype="int32")
        dist.all_reduce(flag)
        return int(flag.numpy()[0]) > 0

    @property
    def exit_code(self) -> int:
        """The shell's code for death by this signal (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + int(self.signum or signal.SIGINT)
