"""The one place a model is composed: frozen encoders + trainable decoder as one module, and its identity."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from textseg.config import ModelConfig
from textseg.model.decoder import DecoderOutput, build_decoder, pixel_identity
from textseg.model.encoders import VisualEncoder, build_encoders, encoder_identity, visual_dim


class TextSegModel(nn.Module):
    """A textseg model: the frozen ViT (None when the pixel encoder queries the prompt), the frozen text encoder and
    the trainable decoder, built from a (resolved) config.

    The encoders' outputs do not depend on the decoder, so they can be computed once and cached (training's
    FeatureCache, the Segmenter's prompt cache): `forward` takes them, and `encode_images` / `encode_prompts` make
    them from images and prompts.
    """

    def __init__(self, visual: VisualEncoder | None, text: nn.Module, decoder: nn.Module, cfg: ModelConfig) -> None:
        super().__init__()
        self.visual, self.text, self.decoder, self.cfg = visual, text, decoder, cfg

    @property
    def identity(self) -> dict[str, Any]:
        """Encoder identity as checkpoints store it (ViT, text tower, initial pixel-encoder weights)."""
        return encoder_identity(self.visual, self.text, pixel_identity(self.decoder))

    def with_decoder(self, decoder: nn.Module) -> "TextSegModel":
        """The same encoders with another decoder (a weight average, or one wrapped for several processes)."""
        return TextSegModel(self.visual, self.text, decoder, self.cfg)

    def train(self, mode: bool = True) -> "TextSegModel":
        """Train mode for the decoder only: the frozen encoders stay in eval mode (no dropout in their features)."""
        super().train(mode)
        for encoder in (self.visual, self.text):
            if encoder is not None:
                encoder.eval()
        return self

    def pixel_features(self, images: torch.Tensor) -> list[torch.Tensor] | None:
        """The decoder's pixel-encoder features of images (None where it has none), to reuse for several prompts."""
        return self.decoder.image_features(images)

    def encode_images(self, images: torch.Tensor) -> tuple[torch.Tensor | None, list[torch.Tensor] | None]:
        """What the model computes from images (B, 3, S, S) in [0, 1] alone: the ViT's tokens (B, N, Dv) (None without
        a ViT) and the decoder's pixel-encoder features (None where it has none)."""
        tokens = self.visual(self.visual.fit(images)) if self.visual is not None else None
        return tokens, self.pixel_features(images)

    def encode_prompts(self, prompts: Sequence[str], device: torch.device | str | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token ids (B, T), text features (B, T, Dt) and padding (B, T) of prompts."""
        ids = self.text.tokenize(list(prompts))
        if device is not None:
            ids = ids.to(device)
        features, padding = self.text(ids)
        return ids, features, padding

    def forward(
        self, images: torch.Tensor, text: torch.Tensor, padding: torch.Tensor, visual: torch.Tensor | None = None,
        pixel_features: list[torch.Tensor] | None = None,
    ) -> DecoderOutput:
        """Decode (image, prompt) pairs: images (B, 3, S, S) in [0, 1], the prompts' text features (B, T, Dt) and
        padding (B, T), the images' ViT tokens (B, N, Dv) where the model has a ViT, and their pixel features when
        already computed (encode_images)."""
        return self.decoder(visual, text, padding, image=images, pixel_features=pixel_features)


def build_model(cfg: ModelConfig, image_size: int | None = None) -> TextSegModel:
    """Encoders and decoder named by a model config, what it leaves open resolved (ModelConfig.resolved) for model
    inputs of `image_size` (DataConfig.image_size)."""
    cfg = cfg.resolved(image_size)
    visual, text = build_encoders(cfg)
    decoder = build_decoder(cfg, visual_dim(visual), text.out_dim)
    return TextSegModel(visual, text, decoder, cfg)
