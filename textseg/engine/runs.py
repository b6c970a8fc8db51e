"""A training run's folder: the one owner of its file names, and the reader and writer of its per-epoch metrics.

    RUN/config.json     the three configs and the encoders' identity
    RUN/metrics.jsonl   one JSON object per finished epoch (losses, IoU/Dice per class, wrong-prompt rates, time, lr)
    RUN/last.pt         every epoch;  RUN/best.pt  the best epoch by `score`;  RUN/epoch_XXX.pt  every --save-interval
    RUN/cache/          encoder features, with --cache disk
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textseg.files import atomic_path

BEST, LAST, CONFIG, METRICS, CACHE = "best.pt", "last.pt", "config.json", "metrics.jsonl", "cache"


@dataclass(frozen=True)
class RunDir:
    """A run folder: where each of its files is, and its metrics history."""

    path: Path

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def cache(self) -> Path:
        return self.path / CACHE

    def epoch(self, number: int) -> Path:
        """The checkpoint kept of one epoch (--save-interval)."""
        return self.path / f"epoch_{number:03d}.pt"

    def holds_run(self) -> bool:
        """True when a run has written a checkpoint here."""
        return self.last.is_file()

    def clear(self) -> None:
        """Remove a previous run's checkpoints and metrics (--overwrite)."""
        for old in [*self.path.glob("epoch_*.pt"), self.best, self.last, self.metrics]:
            old.unlink(missing_ok=True)

    def history(self, upto: int | None = None) -> list[dict[str, Any]]:
        """The epochs the run recorded ([] when none yet), only those <= upto when given (lines a killed run wrote
        after its last checkpoint are dropped on resume); ValueError naming a line that is not JSON."""
        return read_history(self.metrics, upto)

    def write_history(self, history: list[dict[str, Any]]) -> None:
        """Replace the run's metrics with `history`, atomically."""
        with atomic_path(self.metrics) as tmp:
            tmp.write_text("".join(json.dumps(m) + "\n" for m in history))

    def append_epoch(self, metrics: dict[str, Any]) -> None:
        """Add one finished epoch's metrics."""
        with self.metrics.open("a") as f:
            f.write(json.dumps(metrics) + "\n")

    def best_epoch(self) -> dict[str, Any] | None:
        """The metrics of the epoch best.pt holds (best_epoch)."""
        return best_epoch(self.history())


def read_history(path: str | Path, upto: int | None = None) -> list[dict[str, Any]]:
    """The epochs of a run folder's metrics, or of a metrics .jsonl file itself (RunDir.history)."""
    path = Path(path)
    if path.suffix != ".jsonl":
        path = RunDir(path).metrics
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


def describe_epoch(line: dict[str, Any], epochs: int, minutes: float | None = None, max_minutes: float | None = None,
                   best: bool = False) -> str:
    """One log line for a finished epoch: "epoch 12 of 400: train loss 0.312, IoU crack 0.41 taping 0.52, wrong
    prompts 1.0%, 8 s; 3.2 of 10 min, training stops at the time limit"."""
    ious = " ".join(f"{k[4:]} {v:.2f}" for k, v in line.items() if k.startswith("iou_"))
    wrong = 100 * (line.get("negative_fp_rate", 0.0) + line.get("unrelated_fp_rate", 0.0))
    text = (f"epoch {line['epoch']} of {epochs}: train loss {line.get('train_loss', float('nan')):.3f}, IoU {ious}, "
            f"wrong prompts {wrong:.1f}%{', best so far' if best else ''}, {line.get('epoch_time_s', 0.0):.0f} s")
    if minutes is not None and max_minutes is not None:
        text += f"; {minutes:.1f} of {max_minutes:g} min, training stops at the time limit"
    elif minutes is not None:
        text += f"; {minutes:.1f} min so far"
    return text


def best_epoch(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The epoch best.pt holds: the highest `score` (mean IoU x (1 - wrong-prompt rates)), the first of equals; None
    for a run with no epoch yet."""
    return max(history, key=lambda m: m.get("score", 0.0)) if history else None
