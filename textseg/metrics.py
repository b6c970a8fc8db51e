"""Segmentation metrics from confusion counts: IoU, Dice, precision, recall; per image and summed.

Empty cases. Per image, a ratio whose denominator is zero scores 1.0: an empty prediction of an empty
target is exactly right (IoU = Dice = precision = recall = 1), and an empty prediction of a non-empty
target has precision 1.0 but recall, IoU and Dice 0; means over images (and image rankings) use this.
Summed over a dataset, such a ratio is undefined (None): a model that predicted nothing has no
precision, and a class with nothing to find and nothing found has no IoU. `format_metric` prints it "n/a".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor

NEGATIVE_AREA: float = 0.01
"""A prompt of the other class "fires" (a wrong-prompt false positive) when more than this fraction of an image's
pixels is predicted: the rule of validation, evaluation and the benchmarks."""


def _as_bool(x: ArrayLike) -> np.ndarray:
    """A numpy bool array from a bool/0-1 array or tensor."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    return x if x.dtype == bool else x > 0.5


def confusion_counts(pred: ArrayLike, target: ArrayLike) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of two same-shaped bool masks."""
    p, t = _as_bool(pred), _as_bool(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and target {t.shape} differ in shape")
    tp = int(np.count_nonzero(p & t))
    return tp, int(np.count_nonzero(p)) - tp, int(np.count_nonzero(t)) - tp


def _ratio(num: int, den: int, empty: float | None = 1.0) -> float | None:
    """num / den, or `empty` when den is zero (see the module docstring)."""
    return float(num) / den if den else empty


def iou(tp: int, fp: int, fn: int, empty: float | None = 1.0) -> float | None:
    """Intersection over union, tp / (tp + fp + fn)."""
    return _ratio(tp, tp + fp + fn, empty)


def dice(tp: int, fp: int, fn: int, empty: float | None = 1.0) -> float | None:
    """Dice (F1), 2 tp / (2 tp + fp + fn)."""
    return _ratio(2 * tp, 2 * tp + fp + fn, empty)


def precision(tp: int, fp: int, fn: int = 0, empty: float | None = 1.0) -> float | None:
    """tp / (tp + fp)."""
    return _ratio(tp, tp + fp, empty)


def recall(tp: int, fp: int, fn: int, empty: float | None = 1.0) -> float | None:
    """tp / (tp + fn)."""
    return _ratio(tp, tp + fn, empty)


METRICS = {"iou": iou, "dice": dice, "precision": precision, "recall": recall}


def scores(tp: int, fp: int, fn: int, empty: float | None = 1.0) -> dict[str, float | None]:
    """All four metrics of one set of counts; `empty` where a denominator is zero (1.0 per image, None summed)."""
    return {name: fn_(tp, fp, fn, empty) for name, fn_ in METRICS.items()}


def format_metric(value: float | None, spec: str = ".3f") -> str:
    """A metric for a table: "n/a" when it is undefined (None or nan)."""
    return "n/a" if value is None or value != value else format(value, spec)


def image_scores(pred: ArrayLike, target: ArrayLike) -> dict[str, float]:
    """All four metrics of one predicted mask against its target."""
    return scores(*confusion_counts(pred, target))


@dataclass
class MetricAccumulator:
    """Dataset-level metrics (counts summed over images) and means of per-image metrics."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    per_image: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in METRICS})

    def add(self, pred: ArrayLike, target: ArrayLike) -> dict[str, float]:
        """Count one image; returns its own metrics."""
        return self.add_counts(*confusion_counts(pred, target))

    def add_counts(self, tp: int, fp: int, fn: int) -> dict[str, float]:
        """Count one image given its confusion counts; returns its own metrics."""
        self.tp, self.fp, self.fn = self.tp + tp, self.fp + fp, self.fn + fn
        values = scores(tp, fp, fn)
        for name, value in values.items():
            self.per_image[name].append(value)
        return values

    @property
    def count(self) -> int:
        """Number of images added."""
        return len(self.per_image["iou"])

    def summary(self) -> dict[str, float]:
        """{"iou", "dice", "precision", "recall"} from summed counts (None where undefined), plus "mean_<metric>" over
        images and "images"."""
        result: dict[str, float | None] = dict(scores(self.tp, self.fp, self.fn, empty=None))
        for name, values in self.per_image.items():
            result[f"mean_{name}"] = float(np.mean(values)) if values else float("nan")
        result["images"] = self.count
        return result
