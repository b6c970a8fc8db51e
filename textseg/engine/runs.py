"""A training run's folder: the names of its files, and the one reader and writer of its per-epoch metrics.

    RUN/metrics.jsonl   one JSON object per finished epoch (losses, IoU/Dice per class, negative-prompt FP rate, time, lr)
    RUN/best.pt, RUN/last.pt, RUN/epoch_XXX.pt, RUN/config.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textseg.data.images import atomic_path

METRICS = "metrics.jsonl"


def metrics_path(run: str | Path) -> Path:
    """RUN/metrics.jsonl for a run folder; a .jsonl file is returned as it is."""
    path = Path(run)
    return path if path.suffix == ".jsonl" else path / METRICS


def read_history(run: str | Path, upto: int | None = None) -> list[dict[str, Any]]:
    """The epochs a run recorded ([] when it has none yet), only those <= upto when given (lines a killed run
    wrote after its last checkpoint are dropped on resume); ValueError naming the line that is not JSON."""
    path = metrics_path(run)
    if not path.is_file():
        return []
    history = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            history.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{lineno}: not JSON ({exc})") from exc
    return [m for m in history if upto is None or m["epoch"] <= upto]


def write_history(run: str | Path, history: list[dict[str, Any]]) -> None:
    """Replace the run's metrics with `history`, atomically."""
    with atomic_path(metrics_path(run)) as tmp:
        tmp.write_text("".join(json.dumps(m) + "\n" for m in history))


def append_epoch(run: str | Path, metrics: dict[str, Any]) -> None:
    """Add one finished epoch's metrics."""
    with metrics_path(run).open("a") as f:
        f.write(json.dumps(metrics) + "\n")


def best_epoch(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The epoch best.pt holds: the highest `score` (mean IoU x (1 - wrong-prompt rate)), the first of equals; None
    for a run with no epoch yet."""
    return max(history, key=lambda m: m.get("score", 0.0)) if history else None
