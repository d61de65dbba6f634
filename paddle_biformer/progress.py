"""Progress bars for terminals and notebooks; silent when output goes to a log file (CI,
nohup), where the per-epoch summary lines say enough."""
from __future__ import annotations

import sys

__all__ = ["progress"]


def interactive() -> bool:
    """True in a terminal or a Jupyter/AI Studio notebook."""
    return "ipykernel" in sys.modules or bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress(iterable, total=None, desc=None, enabled: bool = True, **kwargs):
    """``tqdm(iterable)`` when interactive and ``enabled``, else a bar that shows nothing."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not (enabled and interactive()),
                leave=False, dynamic_ncols=True, mininterval=0.5, **kwargs)
