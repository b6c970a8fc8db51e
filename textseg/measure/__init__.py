"""Measuring defects: length, width, count and area of each one in a mask; millimetres in the wall plane when a
marker or a scale gives it (plane); the crack's visible width from the photo (visible)."""

from textseg.measure.defects import (
    WIDTH_CLASSES,
    Defect,
    check_binary,
    check_mm_per_px,
    measure_mask,
    parse_width_classes,
    summarize,
    width_class,
)
from textseg.measure.plane import DEFAULT_DICTIONARY, Marker, MarkerSpec, Plane, detect_markers, find_plane

__all__ = [
    "DEFAULT_DICTIONARY", "WIDTH_CLASSES", "Defect", "Marker", "MarkerSpec", "Plane", "check_binary", "check_mm_per_px",
    "detect_markers", "find_plane", "measure_mask", "parse_width_classes", "summarize", "width_class",
]
