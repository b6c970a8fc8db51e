"""Tests of the metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from textseg.metrics import MetricAccumulator, confusion_counts, dice, image_scores, iou, precision, recall


def test_confusion_counts_numpy_and_torch() -> None:
    pred = np.array([[1, 1, 0], [0, 1, 0]], dtype=bool)
    target = np.array([[1, 0, 0], [0, 1, 1]], dtype=bool)
    assert confusion_counts(pred, target) == (2, 1, 1)
    assert confusion_counts(torch.from_numpy(pred), torch.from_numpy(target).float()) == (2, 1, 1)
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_counts(pred, target[:, :2])


def test_ratios_by_hand() -> None:
    assert iou(2, 1, 1) == pytest.approx(0.5)
    assert dice(2, 1, 1) == pytest.approx(4 / 6)
    assert precision(2, 1, 1) == pytest.approx(2 / 3)
    assert recall(2, 1, 3) == pytest.approx(0.4)


def test_empty_conventions() -> None:
    empty = np.zeros((3, 3), dtype=bool)
    full = np.ones((3, 3), dtype=bool)
    assert image_scores(empty, empty) == {"iou": 1.0, "dice": 1.0, "precision": 1.0, "recall": 1.0}
    assert image_scores(empty, full) == {"iou": 0.0, "dice": 0.0, "precision": 1.0, "recall": 0.0}
    assert image_scores(full, empty) == {"iou": 0.0, "dice": 0.0, "precision": 0.0, "recall": 1.0}


def test_accumulator_summed_and_mean() -> None:
    acc = MetricAccumulator()
    a_pred = np.array([1, 1, 0, 0], dtype=bool)
    a_true = np.array([1, 0, 0, 0], dtype=bool)  # tp 1, fp 1, fn 0 -> iou 0.5
    b_pred = np.array([1, 1, 1, 1], dtype=bool)
    b_true = np.array([1, 1, 1, 0], dtype=bool)  # tp 3, fp 1, fn 0 -> iou 0.75
    assert acc.add(a_pred, a_true)["iou"] == pytest.approx(0.5)
    acc.add(b_pred, b_true)
    acc.add(np.zeros(4, bool), np.zeros(4, bool))  # iou 1 by convention, adds no counts
    summary = acc.summary()
    assert (acc.tp, acc.fp, acc.fn) == (4, 2, 0)
    assert summary["iou"] == pytest.approx(4 / 6)
    assert summary["dice"] == pytest.approx(8 / 10)
    assert summary["mean_iou"] == pytest.approx((0.5 + 0.75 + 1.0) / 3)
    assert summary["images"] == 3
    assert math.isnan(MetricAccumulator().summary()["mean_iou"])


def test_summed_metrics_with_nothing_to_measure_are_undefined() -> None:
    from textseg.metrics import format_metric

    nothing_predicted = MetricAccumulator()
    nothing_predicted.add(np.zeros(4, bool), np.array([1, 1, 0, 0], bool))
    summary = nothing_predicted.summary()
    assert summary["precision"] is None  # no prediction: no precision, not a perfect one
    assert summary["recall"] == 0.0 and summary["iou"] == 0.0
    assert summary["mean_precision"] == 1.0  # per image the convention stands (no false positives)
    nothing_at_all = MetricAccumulator()
    nothing_at_all.add(np.zeros(4, bool), np.zeros(4, bool))
    assert nothing_at_all.summary()["iou"] is None and nothing_at_all.summary()["mean_iou"] == 1.0
    assert [format_metric(v) for v in (None, float("nan"), 0.25)] == ["n/a", "n/a", "0.250"]
