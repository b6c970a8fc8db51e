"""Training losses: pixel BCE-with-logits plus soft Dice, an image-level presence term, and the class-match terms."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F

from textseg import CLASSES
from textseg.model.decoder import DecoderOutput
from textseg.prompts import NONE

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


class ClassLabels(NamedTuple):
    """What every example says about classes: the prompt's class index (B,) (K for a prompt that names none of
    them), and which classes the image shows (B, K)."""

    prompt: torch.Tensor
    image: torch.Tensor

    def to(self, device: torch.device | str) -> "ClassLabels":
        """Both tensors on device."""
        return ClassLabels(self.prompt.to(device), self.image.to(device))


def class_labels(image_classes: Sequence[str], prompt_classes: Sequence[str], has_mask: Sequence[bool] | torch.Tensor) -> ClassLabels:
    """Labels from each example's dataset class, its prompt's class, and whether its own mask has foreground."""
    index = {c: i for i, c in enumerate(CLASSES)}
    prompt_index = {**index, NONE: len(CLASSES)}
    prompt = torch.tensor([prompt_index[c] for c in prompt_classes], dtype=torch.long)  # (B,)
    image = torch.zeros(len(image_classes), len(CLASSES))  # (B, K)
    image[torch.arange(len(image_classes)), torch.tensor([index[c] for c in image_classes])] = torch.as_tensor(has_mask).float().cpu()
    return ClassLabels(prompt, image)


def class_match_loss(out: DecoderOutput, labels: ClassLabels) -> torch.Tensor:
    """Cross-entropy of the prompt classifier plus BCE of the image classifier (decoders with a ClassMatchHead)."""
    prompt = F.cross_entropy(out.prompt_class.float(), labels.prompt)
    image = F.binary_cross_entropy_with_logits(out.image_class.float(), labels.image)
    return prompt + image


def decoder_loss(out: DecoderOutput, target: torch.Tensor, labels: ClassLabels | None = None) -> torch.Tensor:
    """The training loss of any decoder: segmentation_loss with its presence term, plus class_match_loss when the
    decoder has class heads and the labels are there."""
    presence = None if out.presence is None else out.presence.float()
    loss = segmentation_loss(out.logits.float(), target, presence)
    if labels is not None and out.prompt_class is not None:
        loss = loss + class_match_loss(out, labels)
    return loss
