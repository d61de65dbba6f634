"""The model families of the zoo, one module each; importing this package registers them all
(see :mod:`paddle_biformer.registry`)."""
from .base import ZooModel
from .biformer import BiFormer, BiFormerStage, Block
from .biformer_stl import BiFormerSTL
from .casvit import RCViT
from .crossformer import CrossFormer
from .hybrid import ResNetBRA

# every family module, for paddle.jit.ignore_module (export runs model code unconverted)
from . import _casvit_kernels, base, biformer, biformer_stl, casvit, crossformer, hybrid  # noqa: E402

FAMILY_MODULES = [base, biformer, biformer_stl, casvit, _casvit_kernels, crossformer, hybrid]

__all__ = ["ZooModel", "BiFormer", "BiFormerStage", "Block", "BiFormerSTL", "RCViT", "CrossFormer",
           "ResNetBRA", "FAMILY_MODULES"]
