"""Set up paddle-biformer:  python install.py [--export] [--dev] [--quiet]

Dependencies (PaddlePaddle's CPU build only when no Paddle imports: an installed
paddlepaddle-gpu is kept), interpretdl without its outdated pins, the package itself (editable),
and with --export/--dev the ONNX tools that match your Paddle. See paddle_biformer/install.py.
"""
import os
import runpy
import sys

if __name__ == "__main__":
    sys.argv[0] = __file__
    runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "paddle_biformer", "install.py"),
                   run_name="__main__")
