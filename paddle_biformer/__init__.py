"""paddle-biformer: BiFormer (CVPR 2023, Bi-Level Routing Attention) for PaddlePaddle."""
from .bra import BiLevelRoutingAttention, KVGather, QKVLinear, TopkRouting
from .biformer import BiFormer, BiFormerStage, Block
from .layers import Attention, AttentionLePE, DropPath, DWConv
from .runtime import configure_cpu

__version__ = "0.1.0"
