"""Checkpoints: atomic save, safe load (`torch.load(weights_only=True)`), clear errors for bad files.

A checkpoint is a plain dict of tensors and primitive containers, so it loads with
`weights_only=True`:

    format      "textseg-checkpoint"        version   1
    decoder     the decoder's state_dict    optimizer the AdamW state_dict (absent in exported files)
    epoch       completed epochs            configs   {"data": {...}, "model": {...}, "train": {...}}
    encoders    encoder identity            metrics   the epoch's metrics line (dict)
    state       run state for an exact resume (RNG states, best score, grad scaler)
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from textseg.config import DataConfig, ModelConfig, TrainConfig, from_dict, to_dict
from textseg.files import atomic_path

FORMAT = "textseg-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("decoder", "epoch", "configs", "encoders")
LEGACY_MODEL_SETTINGS: dict[str, Any] = {"refine_fold": 1, "pixel_encoder": "none", "pixel_weights": "random", "queries": "vit",
                                         "text_encoder": "clip", "none_class": False}
"""Model settings implied by checkpoints written before the setting existed (what those decoders were)."""
LEGACY_DATA_SETTINGS: dict[str, Any] = {"unrelated_rate": 0.0}
"""Data settings likewise: such runs trained without prompts for other things, and resume so."""
RENAMED_SEEDS: dict[str, str] = {"data": "carve_seed", "model": "init_seed", "train": "shuffle_seed"}
"""Each config's "seed" as checkpoints written before the seeds were named by role call it."""


class CheckpointError(ValueError):
    """A checkpoint file that is corrupt, foreign, or incompatible; the message names the file."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write payload (plus format and version tags) to path atomically; never leaves a partial file."""
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise ValueError(f"checkpoint payload for {path} lacks keys {missing}")
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a textseg checkpoint with weights_only=True; CheckpointError for a truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else ""
        reason = f": {reason}" if reason and len(reason) <= 80 else ""  # torch's longer messages are its internals
        raise CheckpointError(
            f"{path}: cannot read checkpoint ({type(exc).__name__}{reason}); the file is truncated, corrupt, or not a "
            "PyTorch file: use another checkpoint (e.g. RUN/best.pt)"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = sorted(map(str, data))[:8] if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: not a textseg checkpoint (found {found}); give a file written by `textseg train`")
    if data.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {data['version']} is newer than this textseg ({VERSION})")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise CheckpointError(f"{path}: textseg checkpoint lacks {missing}; the file is damaged")
    configs = data["configs"] if isinstance(data["configs"], dict) else {}
    for part, name in RENAMED_SEEDS.items():
        if isinstance(configs.get(part), dict) and "seed" in configs[part]:
            configs[part] = {name: configs[part]["seed"], **{k: v for k, v in configs[part].items() if k != "seed"}}
    if isinstance(configs.get("model"), dict):
        configs["model"] = {**LEGACY_MODEL_SETTINGS, **configs["model"]}
    if isinstance(configs.get("data"), dict):
        configs["data"] = {**LEGACY_DATA_SETTINGS, **configs["data"]}
    return data


def checkpoint_configs(ckpt: dict[str, Any]) -> tuple[DataConfig, ModelConfig, TrainConfig]:
    """The three configs stored in a checkpoint, as dataclasses."""
    cfgs = ckpt["configs"]
    return from_dict(DataConfig, cfgs["data"]), from_dict(ModelConfig, cfgs["model"]), from_dict(TrainConfig, cfgs["train"])


def identity_differences(expected: dict[str, Any], actual: dict[str, Any], prefix: str = "") -> list[str]:
    """Human-readable differences between two (nested) encoder identity dicts."""
    diffs = []
    for key in sorted(set(expected) | set(actual)):
        a, b = expected.get(key), actual.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += identity_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}: checkpoint {a!r} vs now {b!r}")
    return diffs


def check_encoders(ckpt: dict[str, Any], identity: dict[str, Any], path: str | Path = "checkpoint") -> None:
    """Raise CheckpointError if the encoders now loaded differ from those the checkpoint was trained with."""
    diffs = identity_differences(ckpt["encoders"], identity)
    if diffs:
        raise CheckpointError(
            f"{path}: decoder was trained with other encoders ({'; '.join(diffs)}); "
            "load the same encoder weights (--visual-model/--visual-weights/--visual-layers/--text-weights)"
        )


def check_model_config(ckpt: dict[str, Any], model_cfg: ModelConfig, path: str | Path = "checkpoint") -> None:
    """Raise CheckpointError if a model config differs from the checkpoint's (decoder type, widths, encoders)."""
    saved, current = ckpt["configs"]["model"], to_dict(model_cfg)
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs now {current[k]!r}" for k in sorted(current) if saved.get(k) != current[k]]
    if diffs:
        raise CheckpointError(f"{path}: checkpoint is of another model ({'; '.join(diffs)}); use matching settings")


def load_decoder_state(decoder: nn.Module, state: dict[str, torch.Tensor], path: str | Path = "checkpoint") -> None:
    """Load a decoder state dict; CheckpointError (naming the file and the first mismatch) when it does not fit."""
    try:
        decoder.load_state_dict(state)
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
        raise CheckpointError(
            f"{path}: decoder weights do not fit this textseg's {type(decoder).__name__} ({first[:300]}); "
            "the checkpoint is damaged or was trained by another version of the decoder: retrain, or use that version"
        ) from exc
