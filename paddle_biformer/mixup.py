"""Batch Mixup / CutMix with mixed soft labels, and the soft-target cross-entropy.

The seed notebook used ``paddlex.transforms.MixupImage``, a detection transform: it blends two
images but keeps one image's label, and with its default ``mixup_epoch=-1`` it does nothing.
Here each batch is mixed with itself reversed (as timm's Mixup in batch mode), and the
one-hot targets (with label smoothing) are mixed with the same proportion.
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F

__all__ = ["MixupCutmix", "smooth_one_hot", "soft_cross_entropy"]


def smooth_one_hot(labels: paddle.Tensor, num_classes: int, smoothing: float = 0.0) -> paddle.Tensor:
    """(N,) int labels -> (N, num_classes) targets: 1 - smoothing + smoothing / K on the true
    class, smoothing / K elsewhere (the seed's LabelSmoothingCrossEntropy)."""
    off = smoothing / num_classes
    return F.one_hot(labels, num_classes) * (1.0 - smoothing) + off


def soft_cross_entropy(logits: paddle.Tensor, targets: paddle.Tensor) -> paddle.Tensor:
    """Mean over the batch of -sum_k targets_k * log_softmax(logits)_k. logits, targets: (N, K)."""
    return -(targets * F.log_softmax(logits.astype("float32"), axis=-1)).sum(axis=-1).mean()


class MixupCutmix:
    """Mix a batch: ``__call__(images (N, C, H, W), labels (N,), rng) -> (images, targets)``.

    mixup_alpha / cutmix_alpha: Beta(alpha, alpha) concentration (0 disables); with both, each
    batch uses CutMix with probability ``switch_prob``; ``prob``: chance that a batch is mixed
    at all. Targets always carry ``label_smoothing``.
    """

    def __init__(self, num_classes: int, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0,
                 prob: float = 1.0, switch_prob: float = 0.5, label_smoothing: float = 0.0):
        self.num_classes, self.mixup_alpha, self.cutmix_alpha = num_classes, mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob, self.label_smoothing = prob, switch_prob, label_smoothing

    @property
    def active(self) -> bool:
        return self.prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)

    def __call__(self, images, labels, rng: np.random.Generator):
        targets = smooth_one_hot(labels, self.num_classes, self.label_smoothing)
        if not self.active or rng.random() >= self.prob or images.shape[0] < 2:
            return images, targets
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or rng.random() < self.switch_prob)
        lam = float(rng.beta(*(2 * [self.cutmix_alpha if use_cutmix else self.mixup_alpha])))
        partner = images.flip(axis=[0])
        if use_cutmix:
            h, w = images.shape[2], images.shape[3]
            cut_h, cut_w = int(h * np.sqrt(1 - lam)), int(w * np.sqrt(1 - lam))
            cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
            y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
            x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
            mask = np.zeros((1, 1, h, w), dtype=np.float32)
            mask[..., y0:y1, x0:x1] = 1.0
            mask = paddle.to_tensor(mask, dtype=images.dtype, place=images.place)
            images = images * (1.0 - mask) + partner * mask
            lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)  # the area actually kept
        else:
            images = images * lam + partner * (1.0 - lam)
        return images, targets * lam + targets.flip(axis=[0]) * (1.0 - lam)
