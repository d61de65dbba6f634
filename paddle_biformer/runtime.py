"""Process-level settings that decide how fast Paddle runs on a CPU.

Three defaults of Paddle's CPU build cost BiFormer a factor of 2-5 on a CPU:

* Paddle's bundled MKL takes a generic code path on AMD CPUs: its matrix products ran at
  30 GMAC/s on a 2-core AMD EPYC where PyTorch reaches 85. ``MKL_DEBUG_CPU_TYPE=5`` selects the
  AVX2 path (95 GMAC/s); it must be set before the first matrix product, so importing
  paddle_biformer sets it on AMD CPUs unless it is already set (:func:`prefer_fast_mkl_path`).
* Paddle sets ``OMP_NUM_THREADS=1`` when it is imported, so matrix products use one core.
* Paddle's CPU allocator hands every large tensor back to glibc, and glibc unmaps blocks above
  its mmap threshold at once, so the next op pays page faults on fresh memory (a ReLU over
  19 MB took 9 ms instead of 0.8 ms on a 2-core machine).

:func:`configure_cpu` fixes both. ``create_model`` applies it on the first model built on a CPU
(opt out: ``PADDLE_BIFORMER_AUTO_CPU=0``); calling it yourself, before or after, sets your own
thread count. Nothing here changes results, only speed.
"""
from __future__ import annotations

import ctypes
import os

import paddle

__all__ = ["configure_cpu", "cpu_count", "num_threads", "prefer_fast_mkl_path", "is_configured"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_configured: dict = {}


def prefer_fast_mkl_path() -> bool:
    """On AMD CPUs, make MKL use its AVX2 kernels (``MKL_DEBUG_CPU_TYPE=5``) unless the
    variable is set already. Takes effect if no MKL matrix product has run in this process."""
    try:
        with open("/proc/cpuinfo") as f:
            amd = "AuthenticAMD" in f.read(4096)
    except OSError:
        return False
    if amd:
        os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    return amd


def cpu_count() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _tune_glibc_malloc() -> bool:
    """Keep freed large blocks in the heap instead of unmapping them (glibc only)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1) == 1
        return bool(ok)
    except (OSError, AttributeError):
        return False


def configure_cpu(num_threads: int | None = None, tune_malloc: bool = True) -> dict:
    """Use ``num_threads`` CPU threads (default: env ``PADDLE_BIFORMER_NUM_THREADS``, else all
    CPUs divided by the number of local data-parallel processes) and tune glibc malloc.

    Returns the settings applied, e.g. ``{'num_threads': 2, 'malloc_tuned': True}``.
    Safe to call more than once; a no-op for the thread count on GPU-only work.
    """
    if num_threads is None:
        env = os.environ.get("PADDLE_BIFORMER_NUM_THREADS")
        if env:
            num_threads = int(env)
        else:
            local = int(os.environ.get("PADDLE_LOCAL_SIZE", os.environ.get("PADDLE_TRAINERS_NUM", "1")) or 1)
            num_threads = max(1, cpu_count() // max(1, local))
    num_threads = max(1, int(num_threads))
    if _configured.get("num_threads") != num_threads:
        core = getattr(paddle, "base", None) or getattr(paddle, "fluid")
        core.core.set_num_threads(num_threads)
        _configured["num_threads"] = num_threads
    if tune_malloc and "malloc_tuned" not in _configured:
        _configured["malloc_tuned"] = _tune_glibc_malloc()
    return dict(_configured)


def num_threads() -> int:
    """Threads for our CPU kernels: as set by :func:`configure_cpu`, else all CPUs."""
    return _configured.get("num_threads") or cpu_count()


def is_configured() -> bool:
    """Whether :func:`configure_cpu` ran in this process."""
    return "num_threads" in _configured
