"""paddle-biformer: BiFormer (CVPR 2023, Bi-Level Routing Attention) for PaddlePaddle."""
# Pillow before Paddle: with Paddle 2.6 imported first, Pillow cannot decode PNG files
# ("codec configuration error"; Paddle's bundled zlib wins)
from PIL import Image as _pil_image  # noqa: F401, I001

from .runtime import prefer_fast_mkl_path

prefer_fast_mkl_path()  # before any matrix product runs (see runtime.py)

from .bra import BiLevelRoutingAttention, KVGather, QKVLinear, TopkRouting
from .biformer import BiFormer, BiFormerStage, Block
from .layers import Attention, AttentionLePE, DropPath, DWConv
from .runtime import configure_cpu

__version__ = "0.1.0"
from .checkpoint import load_pretrained
from .convert import convert_state_dict
from .flops import count_flops, count_params
from .registry import create_model, list_models, register_model

# paddle.jit.to_static (export) runs the model code as it is, building Paddle ops, instead of
# rewriting it: no branch in it depends on tensor values, and Paddle 2.6's rewriting breaks on
# module state, early returns and super()
from . import _ext, bra, biformer, flops, layers, ops  # noqa: E402

import paddle as _paddle  # noqa: E402

_paddle.jit.ignore_module([_ext, bra, biformer, flops, layers, ops])
