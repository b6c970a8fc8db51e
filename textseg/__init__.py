"""textseg: text-prompted segmentation of wall cracks and drywall taping seams.

The public API, importable from here (loaded on first use, so `import textseg` stays light):
Segmenter and Tiling (prediction), train, evaluate, inspect_photos, build_model, and the three configs.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from textseg.config import CLASS_THRESHOLDS, CLASSES, MODEL_SIZE, THRESHOLD  # noqa: E402,F401 - the constants' one home

_API = {
    "Segmenter": "textseg.predictor", "Tiling": "textseg.predictor", "train": "textseg.engine.train",
    "evaluate": "textseg.evaluate", "inspect_photos": "textseg.inspection", "build_model": "textseg.model.build",
    "DataConfig": "textseg.config", "ModelConfig": "textseg.config", "TrainConfig": "textseg.config",
}
__all__ = sorted([*_API, "CLASSES", "CLASS_THRESHOLDS", "MODEL_SIZE", "THRESHOLD"])


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'textseg' has no attribute {name!r}")
