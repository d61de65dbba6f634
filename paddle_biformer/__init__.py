"""paddle-biformer: a zoo of vision transformers for PaddlePaddle, exact to the official code.

Families: BiFormer (CVPR 2023, Bi-Level Routing Attention), CAS-ViT (convolutional additive
self-attention; official classes in paddle_biformer.models.casvit). Everything a user needs:

    create_model(name, num_classes=..., img_size=..., pretrained=..., **official_kwargs)
    list_models(pattern)                   # every registered name, e.g. list_models("biformer*")
    load_pretrained(model, path)           # official .pth (no torch needed) or our .pdparams
    count_params(model), count_flops(model, (1, 3, 224, 224))
    configure_cpu()                        # CPU speed settings (applied on the first build)

Layers with the official names and arguments: BiLevelRoutingAttention, TopkRouting, KVGather,
QKVLinear, Attention, AttentionLePE, DropPath, Block, BiFormer, BiFormerSTL. Bi-Level Routing
Attention as a plug-in block for any CNN (NCHW, any size): BRA2d, BRABlock2d. Training and evaluation:
paddle_biformer.engine (TrainConfig, fit, evaluate); using a trained model:
paddle_biformer.inference (load_trained, predict_images); export: paddle_biformer.export.
"""
import warnings as _warnings

# Pillow before Paddle: with Paddle 2.6 imported first, Pillow cannot decode PNG files
# ("codec configuration error"; Paddle's bundled zlib wins)
from PIL import Image as _pil_image  # noqa: F401, I001

# Paddle 3 imports its C++-extension builder at start-up, which warns that ccache is missing:
# nothing a user of this library needs to act on (our kernels compile once, see _ext.py)
_warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
# and its BatchNorm says at every training-mode forward that it tracks running statistics
_warnings.filterwarnings("ignore", message="When training, we now always track global mean")

from .runtime import prefer_fast_mkl_path

prefer_fast_mkl_path()  # before any matrix product runs (see runtime.py)

from .bra import BiLevelRoutingAttention, KVGather, QKVLinear, TopkRouting  # noqa: E402
from .bra2d import BRA2d, BRABlock2d  # noqa: E402
from .layers import Attention, AttentionLePE, DropPath, DWConv  # noqa: E402
from .models import BiFormer, BiFormerStage, BiFormerSTL, Block, ZooModel  # noqa: E402
from .runtime import configure_cpu  # noqa: E402
from .checkpoint import read_weights, torch_layouts  # noqa: E402
from .factory import create_model, load_pretrained  # noqa: E402
from .flops import count_flops, count_params  # noqa: E402
from .registry import list_models, model_config, register_model  # noqa: E402

__version__ = "0.2.0"

__all__ = ["create_model", "list_models", "model_config", "register_model", "load_pretrained",
           "read_weights", "torch_layouts", "count_flops", "count_params", "configure_cpu",
           "ZooModel", "BiFormer", "BiFormerStage", "BiFormerSTL", "Block", "BiLevelRoutingAttention",
           "TopkRouting", "KVGather", "QKVLinear", "Attention", "AttentionLePE", "DropPath", "DWConv",
           "BRA2d", "BRABlock2d"]

# paddle.jit.to_static (export) runs the model code as it is, building Paddle ops, instead of
# rewriting it: no branch in it depends on tensor values, and Paddle 2.6's rewriting breaks on
# module state, early returns and super()
from . import _ext, bra, bra2d, flops, layers, ops  # noqa: E402
from .models import FAMILY_MODULES as _FAMILY_MODULES  # noqa: E402

import paddle as _paddle  # noqa: E402

_paddle.jit.ignore_module([_ext, bra, bra2d, flops, layers, ops, *_FAMILY_MODULES])
