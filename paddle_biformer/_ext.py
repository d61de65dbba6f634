"""Optional C++ CPU kernels (paddle_biformer/csrc), compiled on first use and cached.

Compiling takes ~15 s once per machine and Paddle version (cache: ``~/.cache/paddle_biformer``
or ``$PADDLE_BIFORMER_EXT_DIR``). If there is no C++ compiler, or
``PADDLE_BIFORMER_NO_EXT=1`` is set, the model falls back to Paddle's own kernels: the same
results, slower on a CPU. GPUs never use these kernels.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import warnings

import paddle

logger = logging.getLogger("paddle_biformer")
_SOURCES = [os.path.join(os.path.dirname(__file__), "csrc", name)
            for name in ("dwconv_nhwc.cc", "im2col_nhwc.cc", "permute.cc", "window_mean.cc", "casvit.cc",
                         "crossformer_ops.cc")]
_HEADERS = [os.path.join(os.path.dirname(__file__), "csrc", "erfc.h")]  # included by the sources
_state: dict = {}
_NAME = "paddle_biformer_cpu"


def _build_dir() -> str:
    digest = hashlib.sha1()
    for src in _SOURCES + _HEADERS:
        with open(src, "rb") as f:
            digest.update(f.read())
    digest.update(paddle.__version__.encode())
    digest.update(os.path.dirname(paddle.__file__).encode())  # link flags name this install
    digest.update(_cpu_flags().encode())  # -march=native: a cache shared by other CPUs is not reused
    root = os.environ.get("PADDLE_BIFORMER_EXT_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "paddle_biformer")
    return os.path.join(root, f"ext_{digest.hexdigest()[:12]}")


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return ""


def _import_built(build: str):
    """The module compiled earlier into ``build`` (marked complete), without Paddle's ``load``,
    which re-runs its setup script (~3 s) to find that nothing changed; None if not there."""
    if not os.path.isfile(os.path.join(build, ".complete")):
        return None
    try:
        from paddle.utils.cpp_extension.extension_utils import _import_module_from_library

        return _import_module_from_library(_NAME, os.path.join(build, _NAME), False)
    except Exception:  # another Paddle layout: fall back to load()
        return None


def _openmp_link_flags() -> list:
    """Link OpenMP to the Intel runtime that Paddle's MKL uses (libiomp5, which also serves
    GCC's OpenMP calls) when Paddle ships it: with a second runtime (libgomp) in the process,
    each runtime's idle threads spin on the cores the other one needs (2.5x slower on 2 cores)."""
    libs = os.path.join(os.path.dirname(paddle.__file__), "libs")
    if os.path.isfile(os.path.join(libs, "libiomp5.so")):
        return [f"-L{libs}", "-liomp5", f"-Wl,-rpath,{libs}"]
    return ["-fopenmp"]


@contextlib.contextmanager
def _file_lock(path: str):
    """Serialise compilation between processes (data-parallel workers start together)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock, compile races are then possible but harmless
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _quiet_paddle_builder():
    """Paddle's extension loader logs 'using custom operator only' (twice, with its own handler
    and the root logger's) each time a module is loaded: not the user's business."""
    log = logging.getLogger("utils.cpp_extension")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


def cpu_kernels():
    """The compiled kernels (dwconv_nhwc, im2col_nhwc, permute_copy, window_mean, casvit_*;
    CrossFormer's bias_softmax, gelu_erf, layer_norm_lastdim), or None
    (none available, or disabled by PADDLE_BIFORMER_NO_EXT=1)."""
    if "module" in _state:
        return _state["module"]
    module = None
    if os.environ.get("PADDLE_BIFORMER_NO_EXT", "0") not in ("", "0"):
        _state["module"] = None
        return None
    try:
        build = _build_dir()
        os.makedirs(build, exist_ok=True)
        with _file_lock(os.path.join(build, ".lock")), warnings.catch_warnings(), _quiet_paddle_builder():
            warnings.simplefilter("ignore")  # e.g. "No ccache found"
            module = _import_built(build)
            if module is None:
                from paddle.utils.cpp_extension import load

                module = load(name=_NAME, sources=_SOURCES, build_directory=build,
                              extra_cxx_cflags=["-O3", "-march=native", "-fopenmp"],
                              extra_ldflags=_openmp_link_flags(), verbose=False)
                open(os.path.join(build, ".complete"), "w").close()
    except Exception as e:  # no compiler, unsupported platform, ...
        logger.warning("paddle_biformer: C++ CPU kernels unavailable (%s: %s); using Paddle's "
                       "kernels (same results, slower on CPU). Set PADDLE_BIFORMER_NO_EXT=1 to "
                       "silence this.", type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        module = None
    _state["module"] = module
    return module
