"""Deployment: a trained BiFormer as a static Paddle Inference model (for Paddle Inference,
FastDeploy, Paddle Lite) and as ONNX, each checked against the dynamic-graph model.

    python -m paddle_biformer.export --weights work/model/best_model.pdparams --output export/ --onnx
    python export.py --arch tiny --weights biformer_tiny_best.pth --output export/ --img-size 224

    from paddle_biformer.export import export_model
    report = export_model(model, "export/", img_size=224, onnx=True)   # checks, raises beyond 1e-4

The exported model takes what the dynamic one takes: float32 images (N, 3, S, S), normalised
with the mean/std in ``model_info.json``, and returns logits (N, num_classes). The batch
dimension is dynamic unless a batch size is given. The whole model is in the graph, top-k
routing, window gathers and rearranges included, built from Paddle's own operators (our C++
CPU kernels are dynamic-graph only).

paddle2onnx and onnxruntime are optional (``python install.py --export``); without them the
Paddle Inference export works and ``--onnx`` says what to install.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings

import numpy as np
import paddle

from .runtime import num_threads

__all__ = ["export_model", "export_static", "export_onnx", "paddle_inference_runner", "onnx_runner",
           "ExportError", "ExportCheckError", "MissingExtraError", "main"]

DEFAULT_TOLERANCE = 1e-4
INPUT_NAME = "image"


class ExportError(RuntimeError):
    """Tracing, converting or running the exported model failed. The message is one line; the
    full error and what the native code printed are in ``log`` (a file in the output folder)."""

    def __init__(self, message: str, log: str | None = None):
        super().__init__(message + (f" (details: {log})" if log else ""))
        self.log = log


class ExportCheckError(ExportError):
    """An exported model whose outputs differ from the dynamic-graph model beyond tolerance."""


class MissingExtraError(ImportError):
    """An optional package (paddle2onnx, onnxruntime) is not installed."""


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        pkg = "paddle2onnx onnxruntime" if module in ("paddle2onnx", "onnxruntime") else module
        raise MissingExtraError(
            f"ONNX export and checking need {module}, which is not installed: run "
            f"`python install.py --export` (or `pip install {pkg}`; with PaddlePaddle 2.6 "
            "`pip install 'paddle2onnx<2' onnxruntime`)") from None


_keep_native_log = False  # True inside export_model: the log goes to a file, not the terminal


@contextlib.contextmanager
def _quiet_native_output(enabled: bool = True):
    """Silence what Paddle Inference / paddle2onnx's C++ code prints (pass logs) during the
    block; on an exception the captured text is kept on it as ``native_log`` (export_model
    writes it to a log file; the other callers show it), so nothing useful is lost."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException as e:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            log.seek(0)
            text = log.read().decode(errors="replace")[-20000:]
            if _keep_native_log:
                e.native_log = getattr(e, "native_log", "") + text
            else:
                sys.stderr.write(text)
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _first_line(error: BaseException) -> str:
    """The line of an exception's message worth showing (Paddle's own messages open with a C++
    traceback and put the error after 'Error Message Summary')."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and not set(line.strip()) <= set("-=")]
    for i, line in enumerate(lines):
        if line.startswith("Error Message Summary") and i + 1 < len(lines):
            return lines[i + 1][:300]
    return (lines[0] if lines else type(error).__name__)[:300]


@contextlib.contextmanager
def _stage(what: str, output_dir: str, hint: str = ""):
    """Turn an unexpected failure of ``what`` into a one-line ExportError; the traceback and
    what the native code printed go to ``output_dir``/export_error.log."""
    global _keep_native_log
    saved, _keep_native_log = _keep_native_log, True
    try:
        yield
    except (ExportError, ImportError):
        raise
    except Exception as e:
        log = os.path.join(output_dir, "export_error.log")
        with open(log, "w") as f:
            f.write(traceback.format_exc())
            f.write("\n--- native output ---\n" + getattr(e, "native_log", ""))
        raise ExportError(f"{what} failed: {type(e).__name__}: {_first_line(e)}{hint}", log) from None
    finally:
        _keep_native_log = saved


class _Exported(paddle.nn.Layer):
    """Wrapper converted by paddle.jit.to_static, so the user's model stays a dynamic graph."""

    def __init__(self, model: paddle.nn.Layer):
        super().__init__()
        self.model = model

    def forward(self, image):
        """image: (N, 3, S, S) float32, normalised -> logits (N, num_classes)."""
        return self.model(image)


def _model_files(prefix: str) -> tuple:
    """(model file, params file) written by paddle.jit.save: prefix.json with Paddle 3's PIR,
    prefix.pdmodel otherwise."""
    for ext in (".json", ".pdmodel"):
        if os.path.isfile(prefix + ext):
            return prefix + ext, prefix + ".pdiparams"
    raise FileNotFoundError(f"paddle.jit.save wrote no {prefix}.json or {prefix}.pdmodel")


def export_static(model: paddle.nn.Layer, prefix: str, img_size: int, batch_size: int | None = None,
                  in_chans: int = 3) -> tuple:
    """Save ``model`` (eval mode) as a static graph at ``prefix`` (+ .json or .pdmodel,
    .pdiparams). Input (batch_size or any, in_chans, img_size, img_size) float32.
    Returns (model file, params file)."""
    from paddle.static import InputSpec

    if hasattr(model, "check_input_size"):
        model.check_input_size(img_size, img_size)
    was_training = model.training
    model.eval()
    spec = [InputSpec([batch_size, in_chans, img_size, img_size], "float32", INPUT_NAME)]
    try:
        with warnings.catch_warnings():
            # "In static graph mode, add_() is the same as add()": as intended
            warnings.filterwarnings("ignore", message="In static graph mode")
            # Paddle 3 logs (C++ glog) "PIR not support input out tensor" while tracing: not
            # the user's business; the captured text is shown if the export fails
            with _quiet_native_output():
                static = paddle.jit.to_static(_Exported(model), input_spec=spec, full_graph=True)
                paddle.jit.save(static, prefix)
    finally:
        model.train() if was_training else model.eval()
    return _model_files(prefix)


def export_onnx(model_file: str, params_file: str, onnx_file: str, opset: int = 13) -> str:
    """Convert a saved static model to ONNX with paddle2onnx; returns ``onnx_file``."""
    p2o = _require("paddle2onnx")
    import inspect

    kwargs = {"opset_version": opset, "enable_onnx_checker": True}
    if "optimize_tool" in inspect.signature(p2o.export).parameters:
        # paddle2onnx 2.x folds constants with Polygraphy by default: minutes for BiFormer's
        # shape arithmetic and no faster model (ONNX Runtime folds them when it loads)
        kwargs["optimize_tool"] = "none"
    if os.path.exists(onnx_file):
        os.remove(onnx_file)
    with _quiet_native_output():
        p2o.export(model_file, params_file, onnx_file, **kwargs)
    if not os.path.isfile(onnx_file):  # paddle2onnx logs its errors instead of raising them
        raise RuntimeError(f"paddle2onnx {getattr(p2o, '__version__', '?')} could not convert "
                           f"{model_file}")
    return onnx_file


def paddle_inference_runner(model_file: str, params_file: str, device: str = "cpu",
                            threads: int | None = None, mkldnn: bool = True):
    """A function images (N, C, S, S) float32 numpy -> logits numpy, running the static model
    with a Paddle Inference predictor (CPU: ``threads`` threads, oneDNN unless ``mkldnn`` is
    False; 'gpu': GPU 0)."""
    from paddle import inference

    config = inference.Config(model_file, params_file)
    if device == "gpu":
        config.enable_use_gpu(256, 0)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(threads or num_threads())
        if mkldnn:
            config.enable_mkldnn()
        elif hasattr(config, "disable_mkldnn"):
            config.disable_mkldnn()
    config.disable_glog_info()
    with _quiet_native_output():
        predictor = inference.create_predictor(config)
    inp = predictor.get_input_handle(predictor.get_input_names()[0])
    out = predictor.get_output_handle(predictor.get_output_names()[0])

    shapes_seen = set()

    def run(images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        inp.reshape(list(images.shape))
        inp.copy_from_cpu(images)
        with _quiet_native_output(images.shape not in shapes_seen):  # a new shape logs oneDNN checks
            predictor.run()
        shapes_seen.add(images.shape)
        return out.copy_to_cpu()

    return run


def onnx_runner(onnx_file: str, threads: int | None = None):
    """A function images (N, C, S, S) float32 numpy -> logits numpy, with ONNX Runtime (CPU)."""
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or num_threads()
    options.log_severity_level = 3  # errors only (not paddle2onnx's unused constants)
    session = ort.InferenceSession(onnx_file, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(images: np.ndarray) -> np.ndarray:
        return session.run(None, {name: np.ascontiguousarray(images, dtype=np.float32)})[0]

    return run


@paddle.no_grad()
def _reference(model, images: np.ndarray) -> np.ndarray:
    return model(paddle.to_tensor(images, place=paddle.CPUPlace())).numpy()


def _on_cpu(model) -> bool:
    param = next(iter(model.parameters()), None)
    return param is None or param.place.is_cpu_place()


def _check(name: str, run, batches: list, references: list, tol: float) -> dict:
    """Max |run(images) - reference| over ``batches`` and the dynamic graph's outputs for them
    (``references``); ExportCheckError beyond ``tol``."""
    worst, scale = 0.0, 0.0
    start = time.perf_counter()
    for images, ref in zip(batches, references):
        for _ in range(2):  # twice: a runtime that reuses buffers wrongly fails the second run
            got = run(images)
            if got.shape != ref.shape:
                raise ExportCheckError(f"{name}: output shape {got.shape} for input {images.shape}, "
                                       f"the dynamic-graph model gives {ref.shape}")
            worst = max(worst, float(np.abs(got - ref).max()))
        scale = max(scale, float(np.abs(ref).max()))
    result = {"max_abs_diff": worst, "max_abs_logit": scale, "batch_sizes": [len(b) for b in batches],
              "seconds": round(time.perf_counter() - start, 3)}
    if not worst <= tol:  # also catches NaN
        raise ExportCheckError(
            f"{name}: the exported model differs from the dynamic-graph model by {worst:.3g} "
            f"(logits up to {scale:.3g}), beyond the tolerance {tol:g}. Do not deploy it; please "
            "report this with your Paddle/paddle2onnx versions.")
    return result


def export_model(model: paddle.nn.Layer, output_dir: str, img_size: int, batch_size: int | None = None,
                 onnx: bool = False, opset: int = 13, check: bool = True, tol: float = DEFAULT_TOLERANCE,
                 info: dict | None = None, name: str = "model", seed: int = 0) -> dict:
    """Export ``model`` to ``output_dir``: ``{name}.json``/``.pdmodel`` + ``.pdiparams`` (Paddle
    Inference), ``{name}.onnx`` with ``onnx``, ``model_info.json`` (input/output description and
    ``info``: classes, mean, std) and ``export_report.json``.

    With ``check`` each exported model runs on random batches (batch ``batch_size``, or 1 and 3
    for a dynamic batch) next to the dynamic graph; beyond ``tol`` (max absolute logit
    difference) an ExportCheckError is raised. Files are written to a temporary folder and moved
    into ``output_dir`` when complete. Returns the report (files, differences, timings)."""
    if hasattr(info, "to_dict"):  # a ModelInfo
        info = info.to_dict()
    # fail before the slow part if the extras are missing
    p2o = _require("paddle2onnx") if onnx else None
    ort = _require("onnxruntime") if onnx and check else None
    if hasattr(model, "check_input_size"):  # a size the model cannot take: the user's error
        model.check_input_size(img_size, img_size)
    os.makedirs(output_dir, exist_ok=True)
    in_chans = getattr(model, "in_chans", 3)
    report = {"img_size": img_size, "batch_size": batch_size or "dynamic", "tolerance": tol,
              "paddle": paddle.__version__}
    rng = np.random.default_rng(seed)
    batches = [rng.standard_normal((b, in_chans, img_size, img_size)).astype(np.float32)
               for b in ([batch_size] if batch_size else [1, 3])]
    tmp = tempfile.mkdtemp(prefix=".export-", dir=output_dir)
    was_training, device = model.training, None
    model.eval()  # what is exported, and the reference it is checked against
    if check and not _on_cpu(model):
        # the runtimes are checked on the CPU, so the reference is computed there too (a GPU's
        # kernels, e.g. TF32 convolutions, differ from a CPU's by more than the tolerance)
        device = paddle.get_device()
        model.to(device="cpu")
        report["reference_device"] = "cpu (the model is moved back to " + device + ")"
    without_onnx = "; the export without --onnx (Paddle Inference) does not need this step"
    try:
        start = time.perf_counter()
        with _stage("tracing the model to a static graph", output_dir):
            model_file, params_file = export_static(model, os.path.join(tmp, name), img_size, batch_size, in_chans)
        report["export_seconds"] = round(time.perf_counter() - start, 2)
        produced = [model_file, params_file]
        references = [_reference(model, images) for images in batches] if check else []
        if check:
            with _stage("running the exported model in Paddle Inference", output_dir):
                report["paddle_inference"] = _check("Paddle Inference", paddle_inference_runner(model_file, params_file),
                                                    batches, references, tol)
        if onnx:
            start = time.perf_counter()
            with _stage("converting to ONNX (paddle2onnx)", output_dir, without_onnx):
                onnx_file = export_onnx(model_file, params_file, os.path.join(tmp, name + ".onnx"), opset)
            report["onnx_seconds"] = round(time.perf_counter() - start, 2)
            report["paddle2onnx"] = getattr(p2o, "__version__", "?")
            report["opset"] = opset
            produced.append(onnx_file)
            if check:
                report["onnxruntime_version"] = ort.__version__
                with _stage("running the ONNX model in ONNX Runtime", output_dir, without_onnx):
                    report["onnxruntime"] = _check("ONNX Runtime", onnx_runner(onnx_file), batches, references, tol)
        meta = {**(info or {}), "input": {"name": INPUT_NAME, "shape": [batch_size or -1, in_chans, img_size, img_size],
                                          "dtype": "float32", "layout": "NCHW",
                                          "preprocess": "RGB / 255, minus mean, divided by std"},
                "output": {"shape": [batch_size or -1, getattr(model, "num_classes", -1)], "meaning": "logits"}}
        for path, obj in ((os.path.join(tmp, "model_info.json"), meta),
                          (os.path.join(tmp, "export_report.json"), report)):
            with open(path, "w") as f:
                json.dump(obj, f, indent=1)
            produced.append(path)
        report["files"] = []
        for path in produced:  # complete: move into place
            dest = os.path.join(output_dir, os.path.basename(path))
            os.replace(path, dest)
            report["files"].append(dest)
    finally:
        model.train() if was_training else model.eval()
        if device is not None:
            model.to(device=device)
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def parse_args(argv=None):
    from .cli import checked

    positive = {"low": 1, "high": None, "low_open": False, "high_open": False, "choices": None}
    p = argparse.ArgumentParser(prog="export.py", usage="%(prog)s --weights FILE --output DIR [options]   (--help lists them)",
                                description="Export a trained model of the zoo to Paddle "
                                "Inference (and ONNX), checked against the dynamic-graph model.")
    p.add_argument("--weights", required=True,
                   help="best/final_model.pdparams (with model_info.json), last.pdckpt or an official .pth")
    p.add_argument("--arch", help="the model of an official .pth (default: from model_info.json, or recognised "
                                  "from the weights)")
    p.add_argument("--output", required=True, help="folder for the exported files")
    p.add_argument("--img-size", type=checked("img_size", int, dict(positive, low=16)),
                   help="input size (default: the training size, else 224)")
    p.add_argument("--batch-size", type=checked("batch_size", int, positive),
                   help="fixed batch size (default: dynamic)")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx (needs paddle2onnx, onnxruntime)")
    p.add_argument("--opset", type=checked("opset", int, dict(positive, low=11)), default=13,
                   help="ONNX opset (>= 11; default 13)")
    p.add_argument("--tol", type=checked("tol", float, dict(positive, low=0.0, low_open=True)),
                   default=DEFAULT_TOLERANCE, help="max |logit difference| allowed (default 1e-4)")
    p.add_argument("--no-check", action="store_true", help="skip running the exported models")
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Command line: exit 0 when exported and checked, 1 when a check fails, 2 on input errors."""
    from .checkpoint import CheckpointError, CheckpointMismatchError
    from .inference import load_trained
    from .run_folder import RunFolder

    args = parse_args(argv)
    try:
        RunFolder(args.output).check_writable()
        model, info = load_trained(args.weights, args.arch, args.img_size)
        print(f"exporting {info.arch} ({info.num_classes} classes) at {info.img_size}x{info.img_size}, "
              f"batch {args.batch_size or 'dynamic'} -> {args.output}", flush=True)
        report = export_model(model, args.output, info.img_size, args.batch_size, onnx=args.onnx,
                              opset=args.opset, check=not args.no_check, tol=args.tol,
                              info={**info.to_dict(), "weights": os.path.abspath(args.weights)})
    except ExportError as e:  # a failed check, or a step that failed: one line, details in e.log
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (FileNotFoundError, PermissionError, ValueError, ImportError, CheckpointError,
            CheckpointMismatchError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for key, label in (("paddle_inference", "Paddle Inference"), ("onnxruntime", "ONNX Runtime")):
        if key in report:
            r = report[key]
            print(f"{label:16s} max |diff| vs dynamic graph: {r['max_abs_diff']:.2e} (logits up to "
                  f"{r['max_abs_logit']:.2f}; batches {r['batch_sizes']}; tolerance {args.tol:g})")
    for path in report["files"]:
        print(f"  wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
