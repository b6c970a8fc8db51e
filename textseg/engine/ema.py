"""Exponential moving average of the decoder's weights: what validation, checkpoints and prediction use.

With a constant learning rate on a few hundred photos, single-epoch weights swing (a class's IoU can drop to 0
for an epoch when the image classifier flips); their running average does not.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from textseg.model.checkpoint import load_decoder_state


class WeightAverage:
    """EMA of a module's parameters, decay min(decay, (1 + n) / (10 + n)) at update n (early updates follow the
    weights closely); buffers (running statistics) are copied, not averaged."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay {decay} must be in (0, 1)")
        self.decay = decay
        self.steps = 0
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Fold the module's current weights into the average (call after each optimizer step)."""
        self.steps += 1
        keep = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for average, weight in zip(self.module.parameters(), module.parameters()):
            average.lerp_(weight.detach().to(average.dtype), 1.0 - keep)
        for average, buffer in zip(self.module.buffers(), module.buffers()):
            average.copy_(buffer)

    def state_dict(self) -> dict:
        """The averaged module's state dict (what checkpoints store as the decoder)."""
        return self.module.state_dict()

    def load(self, state: dict, steps: int, path: str | Path = "checkpoint") -> None:
        """Restore the average and its update count from a checkpoint (CheckpointError naming path if it does not fit)."""
        load_decoder_state(self.module, state, path)
        self.steps = int(steps)
