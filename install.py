"""Set up paddle-biformer's dependencies:  python install.py [--export] [--dev]

Installs requirements.txt (requirements-dev.txt with --dev, for the tests) with this Python's pip,
and PaddlePaddle (CPU build) only if no Paddle is importable: an existing paddlepaddle-gpu (AI
Studio, GPU servers) is never replaced. Set PADDLE_PACKAGE to choose another package or version,
e.g. PADDLE_PACKAGE="paddlepaddle==2.6.2".

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

HERE = os.path.dirname(os.path.abspath(__file__))


def pip_install(*args):
    cmd = [sys.executable, "-m", "pip", "install", *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.check_call(cmd)


def paddle_version():
    """Version of the importable Paddle, or None. Run in a subprocess: a broken install must not
    break this script."""
    res = subprocess.run([sys.executable, "-c", "import paddle; print(paddle.__version__)"],
                         capture_output=True, text=True)
    return res.stdout.strip().splitlines()[-1] if res.returncode == 0 and res.stdout.strip() else None


def imports(module: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true", help="also install what the tests need (implies --export)")
    parser.add_argument("--export", action="store_true", help="also install paddle2onnx and onnxruntime (ONNX export)")
    args = parser.parse_args()
    version = paddle_version()
    if version:
        print(f"PaddlePaddle {version} is installed: keeping it.")
    else:
        pip_install(os.environ.get("PADDLE_PACKAGE", "paddlepaddle>=2.6"))
    pip_install("-r", os.path.join(HERE, "requirements-dev.txt" if args.dev else "requirements.txt"))
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
