"""Helpers shared by several test modules: tiny datasets, configs, checkpoints and photos, fake encoders.

Test modules import them by name (`from conftest import make_checkpoint`); pytest puts this folder on sys.path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from textseg.config import DataConfig, ModelConfig, TrainConfig, to_dict
from textseg.model.build import build_model
from textseg.model.checkpoint import save_checkpoint

N_TRAIN, N_VALID = 4, 2  # per class


def make_dataset(root: Path, cls: str, n_train: int = N_TRAIN, n_valid: int = N_VALID, size: int = 64, seed: int = 0) -> Path:
    """A tiny dataset in the seed layout (split/images + split/masks): dark diagonal cracks or bright vertical seams."""
    rng = np.random.default_rng(seed + (0 if cls == "crack" else 100))
    for split, n in (("train", n_train), ("valid", n_valid)):
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "masks").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(90, 160, (size, size, 3)).astype(np.uint8)
            mask = np.zeros((size, size), bool)
            c = int(rng.integers(10, size - 20))
            if cls == "crack":
                for y in range(size):
                    x = min(size - 2, max(1, c + (y - size // 2) // 3))
                    mask[y, x - 1 : x + 2] = True
                img[mask] = 30
            else:
                mask[:, c : c + 8] = True
                img[mask] = 230
            Image.fromarray(img).save(root / split / "images" / f"{cls}_{i}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / split / "masks" / f"{cls}_{i}.png")
    return root


def tiny_configs(roots: dict[str, Path], decoder: str = "refine", **train_kwargs) -> tuple[DataConfig, ModelConfig, TrainConfig]:
    """Configs for a fast CPU run: tiny ViT, narrow decoder, batch 4."""
    data_cfg = DataConfig(roots={c: str(r) for c, r in roots.items()}, negative_rate=0.3)
    # the pretrained pixel encoder (refine) with ViT queries, so the ViT feature cache is exercised too
    model_cfg = ModelConfig(visual_model="vit_tiny_patch16_224", decoder=decoder, dim=64, heads=4, refine_width=8, refine_size=64,
                            visual_weights="random", queries="vit")  # the default text encoder: the packaged MiniLM
    train_cfg = TrainConfig(**{"epochs": 3, "batch_size": 4, "lr": 3e-3, "save_interval": 2, "device": "cpu", **train_kwargs})
    return data_cfg, model_cfg, train_cfg


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file (a run's metrics.jsonl)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


TINY = ModelConfig(visual_model="vit_tiny_patch16_224", decoder="refine", dim=32, heads=8, refine_width=8, refine_size=64, visual_weights="random", text_weights="random",
                  none_class=False)  # prompts mean the class their words name: tests that need the classifier say so


def make_checkpoint(path: Path, model_cfg: ModelConfig = TINY, data_cfg: DataConfig | None = None) -> Path:
    """A loadable checkpoint of an untrained tiny model (random encoders and decoder)."""
    model = build_model(model_cfg)
    configs = {"data": to_dict(data_cfg or DataConfig()), "model": to_dict(model.cfg), "train": to_dict(TrainConfig(epochs=1))}
    payload = {"decoder": model.decoder.state_dict(), "epoch": 1, "configs": configs, "encoders": model.identity, "metrics": {}}
    return save_checkpoint(path, payload)


def wall_photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A noisy grey (h, w, 3) uint8 photo with a dark horizontal band across the middle."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 170, np.uint8)
    img[h // 2 - 2 : h // 2 + 2] = 40  # a dark horizontal "crack"
    return np.clip(img + rng.integers(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)


def flat_image(h: int = 20, w: int = 30) -> np.ndarray:
    """A uniform grey (h, w, 3) uint8 image (value 100), so drawn pixels are easy to tell apart."""
    return np.full((h, w, 3), 100, np.uint8)


def square_mask(h: int = 20, w: int = 30) -> np.ndarray:
    """A bool (h, w) mask with a 10x10 square set at rows 5-14, columns 10-19."""
    m = np.zeros((h, w), bool)
    m[5:15, 10:20] = True
    return m


class FakeVisual(nn.Module):
    """Deterministic stand-in for VisualEncoder: (B, 3, 224, 224) -> (B, 196, 6), counting images encoded."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.identity = {"name": "fake", "weights": "random", "sha256": None, "seed": seed, "layers": [0]}
        self.seed, self.calls, self.encoded = seed, 0, 0

    def fit(self, images: torch.Tensor) -> torch.Tensor:
        return images  # the tests' images are 224 px already

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.encoded += len(images)
        patches = images.unfold(2, 16, 16).unfold(3, 16, 16).mean(dim=(-1, -2))  # (B, 3, 14, 14)
        left = images[..., :8].mean(dim=(-1, -2)).unsqueeze(1).expand(-1, 196, -1)  # orientation-sensitive
        tokens = torch.cat([patches.flatten(2).transpose(1, 2), left], dim=-1)  # (B, 196, 6)
        return tokens + self.seed


class FakeText(nn.Module):
    """Stand-in for TextEncoder: prompt length and characters as features (B, 77, 4), padding after the text."""

    def __init__(self) -> None:
        super().__init__()
        self.identity = {"name": "fake-text", "weights": "random", "sha256": None, "seed": 0, "layers": None}
        self.encoded = 0

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(prompts), 77, dtype=torch.long)
        for i, p in enumerate(prompts):
            out[i, : len(p)] = torch.tensor([ord(c) for c in p])
        return out

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.encoded += len(tokens)
        feats = torch.stack([tokens.float() / 100, tokens.float().cumsum(1) / 1000, tokens.gt(0).float(), torch.ones_like(tokens).float()], -1)
        return feats, tokens == 0
