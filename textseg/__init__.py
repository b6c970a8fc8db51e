"""textseg: text-prompted segmentation of wall cracks and drywall taping seams.

The public API, importable from here (loaded on first use, so `import textseg` stays light):
Segmenter and Tiling (prediction), train, evaluate, inspect_photos, build_model, and the three configs.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

CLASSES: tuple[str, ...] = ("crack", "taping")
"""The two classes, in a fixed order used for class indices everywhere."""

MODEL_SIZE: int = 224
"""The ViT's input side (ViT-B/16 at 224x224 gives 14x14 patch tokens); the model's default input side is
textseg.config.INPUT_SIZE."""

THRESHOLD: float = 0.5
"""Probability above which a pixel is foreground for a prompt that names no class (textseg.prompts.threshold_for)."""

CLASS_THRESHOLDS: dict[str, float] = {"crack": 0.5, "taping": 0.3}
"""The default threshold of each class's prompts in prediction, evaluation, inspection, the playground and the
validation masks during training. Taping is lower because its labels are boxes around the seam, wider than the
seam the model draws: at 0.3 its masks cover them better on every validation carve (benchmarks/RESULTS.md)."""

_API = {
    "Segmenter": "textseg.predict", "Tiling": "textseg.predict", "train": "textseg.engine.train",
    "evaluate": "textseg.evaluate", "inspect_photos": "textseg.inspection", "build_model": "textseg.model.build",
    "DataConfig": "textseg.config", "ModelConfig": "textseg.config", "TrainConfig": "textseg.config",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'textseg' has no attribute {name!r}")
