"""Training losses: pixel BCE-with-logits plus soft Dice, and an optional image-level presence term."""

from __future__ import annotations

import torch
import torch.nn.functional as F

DICE_SMOOTH: float = 1.0
"""Added to numerator and denominator of the soft Dice (in pixels), so an empty target with an empty
prediction scores Dice 1 (loss 0) and no image divides by zero."""


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = DICE_SMOOTH) -> torch.Tensor:
    """Mean over images of 1 - (2 sum(p t) + s) / (sum(p) + sum(t) + s), with p = sigmoid(logits)."""
    prob = torch.sigmoid(logits.float()).flatten(1)  # (B, H*W)
    tgt = target.float().flatten(1)
    intersection = (prob * tgt).sum(1)
    dice = (2 * intersection + smooth) / (prob.sum(1) + tgt.sum(1) + smooth)
    return (1 - dice).mean()


def presence_loss(presence_logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE-with-logits of an image-level logit (B,) against whether each target mask has any foreground."""
    present = target.flatten(1).amax(1).gt(0).to(presence_logit.dtype)  # (B,)
    return F.binary_cross_entropy_with_logits(presence_logit.float(), present.float())


def segmentation_loss(
    logits: torch.Tensor, target: torch.Tensor, presence_logit: torch.Tensor | None = None
) -> torch.Tensor:
    """BCE-with-logits (mean over pixels) + soft Dice (mean over images) [+ presence BCE when given].

    logits and target are (B, 1, H, W); target holds 0/1. The BCE is computed from logits
    (log-sum-exp form), so it stays finite for any logit value.
    """
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    target = target.float()
    loss = F.binary_cross_entropy_with_logits(logits.float(), target) + soft_dice_loss(logits, target)
    if presence_logit is not None:
        loss = loss + presence_loss(presence_logit, target)
    return loss
