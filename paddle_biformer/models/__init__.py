"""The model families of the zoo, one module each; importing this package registers them all
(see :mod:`paddle_biformer.registry`)."""
from .base import ZooModel
from .biformer import BiFormer, BiFormerStage, Block

__all__ = ["ZooModel", "BiFormer", "BiFormerStage", "Block"]
