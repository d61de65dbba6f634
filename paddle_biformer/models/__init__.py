"""The model families of the zoo, one module each; importing this package registers them all
(see :mod:`paddle_biformer.registry`)."""
from .base import ZooModel
from .biformer import BiFormer, BiFormerStage, Block
from .biformer_stl import BiFormerSTL
from .hybrid import ResNetBRA

# every family module, for paddle.jit.ignore_module (export runs model code unconverted)
from . import base, biformer, biformer_stl, hybrid  # noqa: E402

FAMILY_MODULES = [base, biformer, biformer_stl, hybrid]

__all__ = ["ZooModel", "BiFormer", "BiFormerStage", "Block", "BiFormerSTL", "ResNetBRA", "FAMILY_MODULES"]
