"""Set up paddle-biformer's dependencies:  python install.py [--export] [--dev]
(or ``python -m paddle_biformer.install`` once the package is installed).

Installs what the library needs with this Python's pip (from a clone: requirements.txt, or
requirements-dev.txt with --dev for the tests, and the package itself in editable mode so that
scripts and notebooks anywhere import it), and PaddlePaddle (CPU build) only if no Paddle is
importable: an existing paddlepaddle-gpu (AI Studio, GPU servers) is never replaced. Set
PADDLE_PACKAGE to choose another package or version, e.g. PADDLE_PACKAGE="paddlepaddle==2.6.2".
``--quiet`` keeps pip's output to errors (notebooks).

interpretdl 0.8.0 (LIME) is installed without its dependency pins (scikit-learn<=0.24 does not
build on Python 3.11); requirements.txt lists what it really needs. OpenCV (needed by
interpretdl) is installed as opencv-python-headless only if no cv2 imports.

--export (implied by --dev) adds what ONNX export needs: onnx, onnxruntime and the paddle2onnx that
reads this Paddle's models (2.x for Paddle 3, 1.x for Paddle 2.6).
"""
import argparse
import os
import subprocess
import sys

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(PACKAGE_DIR)  # a clone: holds pyproject.toml and requirements*.txt
QUIET = False


def pip_install(*args):
    cmd = [sys.executable, "-m", "pip", "install", *(["-q", "--disable-pip-version-check"] if QUIET else []), *args]
    print("+ pip install", " ".join(args), flush=True)
    if not QUIET:
        subprocess.check_call(cmd)
        return
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        sys.stderr.write(res.stdout[-4000:] + res.stderr[-4000:])
        raise SystemExit(f"pip install {' '.join(args)} failed (exit {res.returncode}); its output is above")


def paddle_version():
    """Version of the importable Paddle, or None. Run in a subprocess: a broken install must not
    break this script."""
    res = subprocess.run([sys.executable, "-c", "import paddle; print(paddle.__version__)"],
                         capture_output=True, text=True)
    return res.stdout.strip().splitlines()[-1] if res.returncode == 0 and res.stdout.strip() else None


def imports(module: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def declared_extras(extras: list) -> list:
    """The requirements the installed paddle-biformer declares for ``extras``."""
    from importlib.metadata import requires

    out = []
    for req in requires("paddle-biformer") or []:
        name, _, marker = req.partition(";")
        if any(f'extra == "{e}"' in marker.replace("'", '"') for e in extras):
            out.append(name.strip())
    return out


def in_clone() -> bool:
    return os.path.isfile(os.path.join(REPO, "pyproject.toml")) and os.path.isfile(os.path.join(REPO, "requirements.txt"))


def main(argv=None):
    global QUIET
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true", help="also install what the tests need (implies --export)")
    parser.add_argument("--export", action="store_true", help="also install paddle2onnx and onnxruntime (ONNX export)")
    parser.add_argument("--quiet", action="store_true", help="only errors from pip")
    args = parser.parse_args(argv)
    QUIET = args.quiet
    version = paddle_version()
    if version:
        print(f"PaddlePaddle {version} is installed: keeping it.")
    else:
        pip_install(os.environ.get("PADDLE_PACKAGE", "paddlepaddle>=2.6"))
    extras = "lime,dev" if args.dev else "lime"
    if in_clone():  # the package itself, editable, with the extras (pyproject.toml lists them)
        pip_install("-e", f"{REPO}[{extras}]")
    else:  # installed from a wheel or git: add the extras' packages it declares
        pip_install(*declared_extras(extras.split(",")))
    if not imports("cv2"):
        pip_install("opencv-python-headless")
    pip_install("--no-deps", "interpretdl==0.8.0")
    version = paddle_version()
    if version and (args.export or args.dev):
        major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 3
        # paddle2onnx 2.x reads Paddle 3's PIR models (.json); 1.x the .pdmodel of Paddle 2.6.
        # A development build (version 0.0.0) is taken as Paddle 3.
        pip_install("paddle2onnx>=2.0" if major >= 3 or major == 0 else "paddle2onnx>=1.2,<2", "onnxruntime", "onnx")
    if not version:
        sys.exit("PaddlePaddle does not import after installation; see "
                 "https://www.paddlepaddle.org.cn/install/quick")
    print(f"ready: PaddlePaddle {version}")


if __name__ == "__main__":
    main()
