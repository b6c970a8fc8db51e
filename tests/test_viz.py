"""The plotting helpers: figures saved and labelled."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from conftest import flat_image, square_mask  # noqa: E402
from textseg import viz  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_image_grid_with_outlines_and_credit_saves_png(tmp_path: Path) -> None:
    path = tmp_path / "grid.png"
    fig = viz.image_grid([flat_image()] * 3, [square_mask(), None, square_mask()], titles=["a", "b", "c"], ncols=2,
                         suptitle="grid", credit=True, path=path)
    assert path.is_file() and Image.open(path).size[0] > 100
    texts = [t.get_text() for t in fig.texts]
    assert viz.CREDIT in texts
    assert [ax.get_title() for ax in fig.axes[:3]] == ["a", "b", "c"]
    assert not list(tmp_path.glob(".grid*"))  # atomic save leaves no temporary file
    with pytest.raises(ValueError, match="3 images but 1 masks"):
        viz.image_grid([flat_image()] * 3, [square_mask()])


def test_attention_figure_one_column_per_token(tmp_path: Path) -> None:
    attn = np.random.default_rng(0).random((8, 196, 77)).astype(np.float32)
    fig = viz.attention_figure(flat_image(56, 56), attn, ["<start>", "segment", "crack", "<end>"], heads="all",
                               token_indices=[1, 2], path=tmp_path / "attn.png", credit=True)
    assert (tmp_path / "attn.png").is_file()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [f"head {h}" for h in range(8)] + ["mean of heads"]
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel().startswith("token")] == ["token 'segment'", "token 'crack'"]
    assert sum(1 for ax in fig.axes if ax.get_ylabel().startswith("attention weight")) == 1  # one shared colour bar
    fig2 = viz.prediction_figure(flat_image(), np.random.default_rng(0).random((20, 30)), square_mask(), target=square_mask())
    assert any(ax.get_ylabel() == "P(foreground)" for ax in fig2.axes)  # colour bar labelled


def test_training_curves_from_metrics_jsonl(tmp_path: Path) -> None:
    rows = [
        {"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "val": {"iou": {"crack": 0.1 * e}}, "negative_fp_rate": 0.5 / e}
        for e in range(1, 4)
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    fig = viz.plot_training_curves(tmp_path, path=tmp_path / "curves.png")
    assert (tmp_path / "curves.png").is_file()
    labels = {ax.get_ylabel(): [l.get_label() for l in ax.get_lines()] for ax in fig.axes}
    assert labels["loss"] == ["train_loss", "val_loss"]
    assert labels["IoU / Dice"] == ["val/iou/crack"]
    assert labels["negative-prompt false positives"] == ["negative_fp_rate"]
    line = fig.axes[0].get_lines()[0]
    assert list(line.get_xdata()) == [1, 2, 3]
    (tmp_path / "bad.jsonl").write_text('{"epoch": 1}\nnot json\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        viz.read_metrics(tmp_path / "bad.jsonl")
    with pytest.raises(FileNotFoundError, match="no metrics file"):
        viz.read_metrics(tmp_path / "missing")


def _report(iou: float) -> dict:
    sweep = {"thresholds": [0.3, 0.5, 0.7], "classes": {}}
    classes = {}
    for cls in ("crack", "taping"):
        sweep["classes"][cls] = {"iou": [iou, iou + 0.1, iou], "negative_fp_rate": [0.3, 0.2, 0.1]}
        classes[cls] = {"iou": iou, "dice": iou + 0.05, "best_threshold": 0.5}
    return {"classes": classes, "negative_fp_rate": 0.2, "threshold_sweep": sweep, "split": "valid"}


def test_threshold_sweep_and_run_comparison_plots(tmp_path: Path) -> None:
    fig = viz.plot_threshold_sweep(_report(0.4), path=tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").is_file()
    assert fig.axes[0].get_xlabel() == "threshold"
    assert "crack best = 0.5" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    fig = viz.plot_run_comparison({"seed": _report(0.2), "refine": _report(0.5)}, path=tmp_path / "cmp.png")
    assert (tmp_path / "cmp.png").is_file()
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["seed", "refine"]
    heights = [p.get_height() for p in ax.patches]
    assert heights[:5] == pytest.approx([0.2, 0.25, 0.2, 0.25, 0.2])  # crack iou/dice, taping iou/dice, negative
    with pytest.raises(ValueError, match="no reports"):
        viz.plot_run_comparison({})
