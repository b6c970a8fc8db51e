"""Learning-rate schedules: progress over epochs or minutes, the cosine's values, and the rates a run records."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from textseg.engine.schedule import FINAL_LR_FRACTION, lr_factor, run_progress
from textseg.engine.train import train

from conftest import make_dataset, read_jsonl, tiny_configs


def test_progress_follows_epochs_or_the_time_limit_whichever_ends_the_run_first() -> None:
    assert run_progress(0, 10, 0.0, None) == 0.0
    assert run_progress(5, 10, 9999.0, None) == 0.5  # no time limit: epochs only
    assert run_progress(5, 10, 60.0, 4.0) == 0.5  # 1 of 4 minutes spent: the epochs decide
    assert run_progress(5, 10, 180.0, 4.0) == 0.75  # 3 of 4 minutes spent: the clock decides
    assert run_progress(2, 10, 600.0, 4.0) == 1.0  # past the limit: capped


def test_cosine_decays_from_the_base_rate_to_its_floor_and_constant_stays() -> None:
    assert lr_factor("cosine", 0.0) == pytest.approx(1.0)
    assert lr_factor("cosine", 0.5) == pytest.approx(0.5 + FINAL_LR_FRACTION / 2)
    assert lr_factor("cosine", 1.0) == pytest.approx(FINAL_LR_FRACTION)
    values = [lr_factor("cosine", p / 10) for p in range(11)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert {lr_factor("constant", p) for p in (0.0, 0.3, 1.0)} == {1.0}
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'linear'; choose one of"):
        lr_factor("linear", 0.5)


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("data")
    return {"crack": make_dataset(base / "cracks", "crack", 2, 1), "taping": make_dataset(base / "drywall", "taping", 2, 1)}


def test_a_cosine_run_records_the_scheduled_rate_of_each_epoch(roots: dict[str, Path], tmp_path: Path) -> None:
    train(*tiny_configs(roots, "seed", epochs=3, lr=1e-3, lr_schedule="cosine"), tmp_path)
    lrs = [m["lr"] for m in read_jsonl(tmp_path / "metrics.jsonl")]
    expected = [1e-3 * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * (1 + math.cos(math.pi * e / 3)) / 2) for e in range(3)]
    assert lrs == pytest.approx(expected)


def test_an_unknown_schedule_fails_before_training(roots: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lr_schedule 'step': choose one of"):
        train(*tiny_configs(roots, "seed", epochs=1, lr_schedule="step"), tmp_path)
    assert not any(tmp_path.iterdir())


def test_resume_with_a_new_lr_uses_it(roots: dict[str, Path], tmp_path: Path) -> None:
    train(*tiny_configs(roots, "seed", epochs=1, lr=1e-3), tmp_path)
    train(*tiny_configs(roots, "seed", epochs=2, lr=1e-4), tmp_path, resume=tmp_path / "last.pt")  # the optimizer state holds 1e-3
    lrs = [m["lr"] for m in read_jsonl(tmp_path / "metrics.jsonl")]
    assert lrs == pytest.approx([1e-3, 1e-4])
