"""evaluate(): metrics on hand-made cases with known answers, negative prompts, sweep, report files, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from textseg.cli import main  # noqa: E402
from textseg.config import DataConfig, ModelConfig  # noqa: E402
from textseg.data.datasets import collect_split  # noqa: E402
from textseg.evaluate import best_and_worst, compare_reports, evaluate, load_report, markdown_table, plot_cases  # noqa: E402
from textseg.predictor import Segmenter  # noqa: E402
from textseg.prompts import NONE, PromptMeaning, REPRESENTATIVE as PROMPTS, prompt_class, threshold_for  # noqa: E402

from conftest import make_checkpoint  # noqa: E402


def _rect(h: int, w: int, rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[rows, cols] = True
    return m


# Ground truth per image (name -> mask); crack images c1, c2; taping images t1 and an empty t2.
GT = {
    "c1": _rect(40, 60, slice(10, 20), slice(0, 60)),  # 600 px
    "c2": _rect(30, 50, slice(0, 30), slice(20, 30)),  # 300 px
    "t1": _rect(20, 70, slice(0, 20), slice(30, 40)),  # 200 px
    "t2": np.zeros((20, 70), bool),
}


def _fake_prob(name: str, prompt: str) -> np.ndarray:
    """What the fake model predicts for each (image, prompt): chosen so every metric is known by hand."""
    gt = GT[name]
    h, w = gt.shape
    prob = np.zeros((h, w), np.float32)
    if name.startswith("c"):
        if prompt == "segment crack":  # truth at 0.9, plus a 0.35 false-positive band
            prob[gt] = 0.9
            prob[-2:, :5] = 0.35
        elif prompt == "crack":  # c1: left half of the truth; c2: the truth and 600 px beside it
            if name == "c1":
                prob[10:20, 0:30] = 0.7
            else:
                prob[0:30, 20:50] = 0.7
        elif prompt == "segment taping area":  # negative: c1 5% of pixels at 0.6; c2 7 px only
            flat = prob.reshape(-1)
            flat[: (120 if name == "c1" else 7)] = 0.6
        return prob
    if prompt in PROMPTS["taping"]:
        prob[gt] = 0.6
    elif prompt == "segment crack" and name == "t1":  # negative fires on t1 everywhere
        prob[:] = 0.55
    return prob


class FakeSegmenter:
    """Duck-typed Segmenter whose outputs are fixed per (image, prompt); counts encoder and decoder calls."""

    def __init__(self) -> None:
        self.data_cfg = DataConfig(val_fraction=0.15, carve_seed=0)
        self.model_cfg = ModelConfig(decoder="seed", visual_weights="random", text_weights="random")
        self.checkpoint = "fake.pt"
        self.encoded: list[str] = []
        self.decoded: list[tuple[str, str]] = []

    def encode_prompts(self, prompts: list[str]) -> None:
        self.prompts = list(prompts)

    def prompt_meanings(self, prompts: list[str]) -> list[PromptMeaning]:
        return [PromptMeaning(prompt_class(p) or NONE, {}, "words") for p in prompts]

    def threshold(self, prompt: str, threshold: float | None = None) -> float:
        return threshold_for(prompt, threshold)

    def encode_images(self, rgbs: list[np.ndarray], sources: list[str]) -> list[str]:
        self.encoded += [Path(s).stem for s in sources]
        return [Path(s).stem for s in sources]

    def decode(self, encoded: list[str], prompts: list[str]) -> tuple[list[np.ndarray], None]:
        self.decoded += list(zip(encoded, prompts))
        return [_fake_prob(n, p) for n, p in zip(encoded, prompts)], None


def _write_root(root: Path, split: str, names: list[str]) -> Path:
    for name in names:
        gt = GT[name]
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((*gt.shape, 3), 128, np.uint8)).save(root / split / "images" / f"{name}.png")
        Image.fromarray(gt.astype(np.uint8) * 255).save(root / split / "masks" / f"{name}.png")
    return root


@pytest.fixture()
def roots(tmp_path: Path) -> dict[str, Path]:
    return {"crack": _write_root(tmp_path / "cracks", "valid", ["c1", "c2"]),
            "taping": _write_root(tmp_path / "drywall", "valid", ["t1", "t2"])}


def test_known_metrics_per_class_and_prompt(roots: dict[str, Path], tmp_path: Path) -> None:
    fake = FakeSegmenter()
    report = evaluate(fake, roots, "valid", tmp_path / "eval", batch_size=3, progress=False)
    crack, taping = report["classes"]["crack"], report["classes"]["taping"]
    # canonical prompt at 0.5: the truth exactly, the 0.35 band below threshold
    assert crack["iou"] == 1.0 and crack["dice"] == 1.0 and crack["precision"] == 1.0 and crack["recall"] == 1.0
    assert crack["best_threshold"] == 0.4  # 0.1-0.3 include the false-positive band; 0.9 drops the truth
    sweep = report["threshold_sweep"]
    assert sweep["thresholds"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert sweep["classes"]["crack"]["iou"][:3] == pytest.approx([900 / 920] * 3)  # 10 false-positive px per image
    assert sweep["classes"]["crack"]["iou"][-1] == 0.0
    # "crack": dataset-level tp 600, fp 600, fn 300; per image 0.5 and 1/3
    p = crack["per_prompt"]["crack"]
    assert p["iou"] == pytest.approx(600 / 1500)
    assert p["mean_image_iou"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert p["dice"] == pytest.approx(1200 / 2100)
    assert p["precision"] == pytest.approx(0.5) and p["recall"] == pytest.approx(600 / 900)
    assert list(crack["per_prompt"]) == list(PROMPTS["crack"])  # every prompt, canonical first
    assert crack["per_prompt"]["wall crack"]["iou"] == 0.0  # predicts nothing
    # taping: t1 exact, t2 empty truth and empty prediction scores 1 per image
    assert taping["iou"] == 1.0 and taping["mean_image_iou"] == 1.0 and taping["prompt_mean_iou"] == 1.0
    # negatives: c1 fires (5% > 1%), c2 does not (7 px); t1 fires (all pixels at 0.55), t2 does not
    assert report["negative_fp_rate_per_class"] == {"crack": 0.5, "taping": 0.5}
    assert report["negative_fp_rate"] == 0.5
    assert sweep["classes"]["crack"]["negative_fp_rate"] == [0.5] * 5 + [0.0] * 4
    assert sweep["classes"]["taping"]["negative_fp_rate"] == [0.5] * 5 + [0.0] * 4
    assert report["n_images"] == {"crack": 2, "taping": 2} and report["split"] == "valid"
    assert report["checkpoint"] == "fake.pt"


class FaintTapingSegmenter(FakeSegmenter):
    """Draws the taping truth at 0.4: found at taping's default threshold (0.3), lost at 0.5."""

    def decode(self, encoded: list[str], prompts: list[str]) -> tuple[list[np.ndarray], None]:
        probs, _ = super().decode(encoded, prompts)
        return [p * (0.4 / 0.6) if n.startswith("t") and q in PROMPTS["taping"] else p
                for p, n, q in zip(probs, encoded, prompts)], None


def test_each_class_is_scored_at_its_default_threshold_unless_one_is_given(roots: dict[str, Path]) -> None:
    report = evaluate(FaintTapingSegmenter(), roots, "valid", None, progress=False)
    assert report["thresholds"] == {"crack": 0.5, "taping": 0.3}
    assert report["classes"]["taping"]["threshold"] == 0.3 and report["classes"]["taping"]["iou"] == 1.0
    assert report["classes"]["crack"]["iou"] == 1.0  # at 0.5 the 0.35 false-positive band stays out
    assert "threshold crack 0.5, taping 0.3;" in markdown_table(report)
    fixed = evaluate(FaintTapingSegmenter(), roots, "valid", None, threshold=0.5, progress=False)
    assert fixed["thresholds"] == {"crack": 0.5, "taping": 0.5} and fixed["classes"]["taping"]["iou"] == 0.0
    assert "threshold 0.5;" in markdown_table(fixed)


def test_each_image_encoded_once_and_every_prompt_decoded(roots: dict[str, Path]) -> None:
    fake = FakeSegmenter()
    report = evaluate(fake, roots, "valid", None, batch_size=2, all_negative_prompts=True, progress=False)
    assert sorted(fake.encoded) == ["c1", "c2", "t1", "t2"]
    n_prompts = len(PROMPTS["crack"]) + len(PROMPTS["taping"])  # own prompts + all negative prompts
    assert len(fake.decoded) == 4 * n_prompts == len(set(fake.decoded))
    per_prompt = report["negative_fp_rate_per_prompt"]
    assert per_prompt["crack"]["segment taping area"] == 0.5 and per_prompt["crack"]["drywall seam"] == 0.0
    assert set(per_prompt["taping"]) == set(PROMPTS["crack"])


def test_report_files_keys_and_types(roots: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "eval"
    evaluate(FakeSegmenter(), roots, "valid", out, progress=False)
    report = json.loads((out / "report.json").read_text())
    assert set(report) >= {"classes", "negative_fp_rate", "negative_fp_rate_per_class", "threshold_sweep", "split",
                           "checkpoint", "n_images", "per_image", "thresholds", "roots"}
    for cls in ("crack", "taping"):
        m = report["classes"][cls]
        for key in ("iou", "dice", "precision", "recall", "mean_image_iou", "best_threshold", "negative_fp_rate"):
            assert isinstance(m[key], float), (cls, key)
        assert isinstance(m["per_prompt"], dict) and isinstance(m["n_images"], int)
    rows = {r["image"].split("/")[-1]: r for r in report["per_image"]}
    assert set(rows) == {"c1.png", "c2.png", "t1.png", "t2.png"}
    assert rows["c1.png"]["iou"] == 1.0 and rows["c1.png"]["negative_fraction"] == pytest.approx(120 / 2400)
    assert rows["c2.png"]["prompt_iou"]["crack"] == pytest.approx(1 / 3)
    assert rows["c1.png"]["target_fraction"] == pytest.approx(600 / 2400) and rows["c1.png"]["width"] == 60
    md = (out / "report.md").read_text()
    assert "| crack | 2 | 1.000 |" in md and "| crack | crack | 0.400 | 0.417 |" in md and "50.0%" in md
    assert md == "# Evaluation\n\n" + markdown_table(report)
    assert load_report(out) == report
    best, worst = best_and_worst(report, "crack", k=1)
    assert best[0]["image"].endswith("c2.png") or best[0]["iou"] == 1.0
    table = compare_reports({"a": report, "b": report})
    assert table.count("| a |") == 1 and "crack IoU" in table


def test_mask_size_mismatch_is_an_error(roots: dict[str, Path]) -> None:
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(roots["crack"] / "valid" / "masks" / "c1.png")
    with pytest.raises(ValueError, match="c1.png: mask is 5x5 but image .*c1.png is 60x40"):
        evaluate(FakeSegmenter(), roots, "valid", None, progress=False)


def test_bad_thresholds_and_empty_roots(roots: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match=r"thresholds must be in \[0, 1\]"):
        evaluate(FakeSegmenter(), roots, "valid", None, thresholds=(0.5, 1.5), progress=False)
    with pytest.raises(ValueError, match="no datasets"):
        evaluate(FakeSegmenter(), {}, "valid", None, progress=False)


def _photo_root(root: Path, n: int) -> Path:
    """A masks-layout train split only (no valid/), n photos 48x72 with a dark band as the crack."""
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.clip(160 + rng.integers(0, 40, (48, 72, 3)), 0, 255).astype(np.uint8)
        mask = np.zeros((48, 72), bool)
        mask[20 + i % 5 : 26 + i % 5] = True
        img[mask] = 40
        (root / "train" / "images").mkdir(parents=True, exist_ok=True)
        (root / "train" / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / "train" / "images" / f"p{i}.jpg")
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "train" / "masks" / f"p{i}.png")
    return root


def test_cli_on_real_segmenter_carves_valid_like_training(tmp_path: Path, capsys) -> None:
    crack_root, taping_root = _photo_root(tmp_path / "cracks", 8), _photo_root(tmp_path / "drywall", 6)
    data_cfg = DataConfig(roots={"crack": str(crack_root), "taping": str(taping_root)}, val_fraction=0.25, carve_seed=3)
    ckpt = make_checkpoint(tmp_path / "best.pt", data_cfg=data_cfg)
    out = tmp_path / "eval"
    code = main(["evaluate", "--ckpt", str(ckpt), "--data", f"crack={crack_root}", "--drywall-path", str(taping_root),
                 "--split", "valid", "--out", str(out), "--device", "cpu", "--thresholds", "0.3,0.6"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    report = json.loads((out / "report.json").read_text())
    expected = collect_split({"crack": crack_root, "taping": taping_root}, "valid", val_fraction=0.25, seed=3)
    assert sorted(r["image"] for r in report["per_image"]) == sorted(str(s.image) for s in expected)
    assert report["n_images"] == {"crack": 2, "taping": 2}
    assert report["threshold_sweep"]["thresholds"] == [0.3, 0.5, 0.6]
    assert "| class | images | IoU |" in printed.out and (out / "report.md").is_file()
    assert all(0.0 <= r["iou"] <= 1.0 and r["height"] == 48 for r in report["per_image"])
    # without --data the checkpoint's own roots are used
    assert main(["evaluate", "--ckpt", str(ckpt), "--device", "cpu", "--canonical-only"]) == 0
    printed = capsys.readouterr().out
    assert "| crack | 2 |" in printed and "| crack | segment crack |" in printed and "| crack | wall crack |" not in printed
    seg = Segmenter.from_checkpoint(ckpt, device="cpu")
    fig = plot_cases(seg, report, "crack", which="worst", k=2, credit=True, path=tmp_path / "worst.png")
    assert (tmp_path / "worst.png").is_file() and len([a for a in fig.axes if a.get_title()]) == 2
    plt.close("all")
    assert main(["evaluate", "--ckpt", str(ckpt), "--data", "wood=/nowhere", "--device", "cpu"]) == 1
    assert "unknown class 'wood'" in capsys.readouterr().err


def test_best_and_worst_skip_images_without_the_class() -> None:
    rows = [{"image": "empty.png", "class": "crack", "iou": 1.0, "target_fraction": 0.0},
            {"image": "good.png", "class": "crack", "iou": 0.8, "target_fraction": 0.1},
            {"image": "poor.png", "class": "crack", "iou": 0.1, "target_fraction": 0.2},
            {"image": "seam.png", "class": "taping", "iou": 0.9, "target_fraction": 0.1}]
    best, worst = best_and_worst({"per_image": rows}, "crack", k=2)
    assert [r["image"] for r in best] == ["good.png", "poor.png"] and [r["image"] for r in worst] == ["poor.png", "good.png"]


class BlindSegmenter(FakeSegmenter):
    """Predicts nothing for any prompt."""

    def decode(self, encoded: list[str], prompts: list[str]) -> tuple[list[np.ndarray], None]:
        return [np.zeros(GT[n].shape, np.float32) for n in encoded], None


def test_a_model_that_predicts_nothing_has_undefined_precision(roots: dict[str, Path], tmp_path: Path) -> None:
    report = evaluate(BlindSegmenter(), roots, "valid", tmp_path / "eval", progress=False)
    taping = report["classes"]["taping"]
    assert taping["precision"] is None and taping["recall"] == 0.0 and taping["iou"] == 0.0
    assert json.loads((tmp_path / "eval" / "report.json").read_text())["classes"]["taping"]["precision"] is None
    assert "| taping | 2 | 0.000 | 0.500 | 0.000 | n/a | 0.000 |" in (tmp_path / "eval" / "report.md").read_text()
