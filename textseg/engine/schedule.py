"""Learning-rate schedules over a training run's budget: its epochs, or its minutes when --max-minutes ends it first."""

from __future__ import annotations

import math

from textseg.config import LR_SCHEDULES

FINAL_LR_FRACTION: float = 0.01
"""The cosine schedule decays from the base rate to this fraction of it at the end of the budget."""


def run_progress(epoch: int, epochs: int, elapsed_s: float, max_minutes: float | None) -> float:
    """Fraction in [0, 1] of the budget spent when `epoch` (0-based) starts: epochs done, or time spent when a time
    limit would end the run sooner."""
    progress = epoch / max(epochs, 1)
    if max_minutes:
        progress = max(progress, elapsed_s / (60 * max_minutes))
    return min(max(progress, 0.0), 1.0)


def lr_factor(schedule: str, progress: float) -> float:
    """Multiplier of the base learning rate at `progress` (0 at the start of the run, 1 at its end)."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose one of {list(LR_SCHEDULES)}")
