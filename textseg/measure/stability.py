"""How much a photo's visible crack width moves when its mask is grown or shrunk: the check that the width comes
from the photo, not from how generously the mask was drawn (notebook 07, benchmarks/bench_marker.py)."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from textseg.measure.defects import measure_mask
from textseg.measure.plane import Plane


def shifted(mask: np.ndarray, px: int) -> np.ndarray:
    """The mask grown (px > 0) or shrunk (px < 0) by |px| pixels all round, with a round brush."""
    if px == 0:
        return np.asarray(mask, bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(px) + 1, 2 * abs(px) + 1))
    return (cv2.dilate if px > 0 else cv2.erode)(np.asarray(mask, np.uint8), kernel) > 0


def mean_widths(
    mask: np.ndarray, photo: np.ndarray, plane: Plane | None = None, longest: bool = False
) -> tuple[float | None, float | None]:
    """The length-weighted mean visible width of a mask's defects (None: no valley seen) and that of the mask
    itself, over the same defects; in the plane's units. longest: of the longest defect alone (the main crack),
    which a grown or shrunk mask keeps while small pieces beside it appear, merge or vanish."""
    defects = measure_mask(mask, photo=photo, plane=plane)
    if longest and defects:
        defects = [max(defects, key=lambda d: d.length_px)]
    defects = [d for d in defects if d.visible_width is not None]
    if not defects:
        return None, None
    lengths = np.array([d.length_px for d in defects])
    mask_widths = [d.mean_width_mm if d.mean_width_mm is not None else d.mean_width_px for d in defects]
    return (float(np.average([d.visible_width for d in defects], weights=lengths)),
            float(np.average(mask_widths, weights=lengths)))


def width_drift(
    mask: np.ndarray, photo: np.ndarray, shifts: Sequence[int] = (-4, -2, 2, 4), plane: Plane | None = None,
    longest: bool = False,
) -> dict[int, tuple[float | None, float | None]]:
    """{shift: (visible width, mask width)} for the mask as it is (shift 0) and grown or shrunk by each shift;
    longest: of the longest defect only (mean_widths)."""
    out = {0: mean_widths(mask, photo, plane, longest)}
    for px in shifts:
        moved = shifted(mask, px)
        out[px] = mean_widths(moved, photo, plane, longest) if moved.any() else (None, None)
    return out
