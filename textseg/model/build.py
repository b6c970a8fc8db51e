"""The one place a model is assembled: frozen encoders + trainable decoder, and the identity checkpoints record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from textseg.config import ModelConfig
from textseg.model.decoder import build_decoder, pixel_identity
from textseg.model.encoders import TextEncoder, VisualEncoder, build_encoders, encoder_identity, visual_dim


@dataclass
class Model:
    """The parts of a textseg model and the (resolved) config they were built from."""

    visual: VisualEncoder | None  # None when the cross-attention queries come from the pixel encoder
    text: TextEncoder
    decoder: nn.Module
    cfg: ModelConfig

    @property
    def identity(self) -> dict[str, Any]:
        """Encoder identity as checkpoints store it (ViT, CLIP text tower, initial pixel-encoder weights)."""
        return encoder_identity(self.visual, self.text, pixel_identity(self.decoder))


def build_model(cfg: ModelConfig) -> Model:
    """Encoders and decoder named by a model config ("auto" queries resolved)."""
    cfg = cfg.resolved()
    visual, text = build_encoders(cfg)
    decoder = build_decoder(cfg, visual_dim(visual), text.out_dim)
    return Model(visual, text, decoder, cfg)
