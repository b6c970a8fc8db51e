"""Training: run files, lowering loss for both decoders, exact resume, --max-minutes, bad input, the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from textseg.cli import main
from textseg.engine.runtime import resolve_device
from textseg.engine.train import train
from textseg.model.checkpoint import CheckpointError, load_checkpoint
from textseg.prompts import all_prompts

from conftest import N_TRAIN, N_VALID, make_dataset, read_jsonl, tiny_configs

@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("data")
    return {"crack": make_dataset(base / "cracks", "crack"), "taping": make_dataset(base / "drywall", "taping")}


@pytest.fixture(scope="module")
def refine_run(roots: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One uninterrupted 4-epoch refine run, shared by several tests."""
    out = tmp_path_factory.mktemp("runs") / "full"
    return out, train(*tiny_configs(roots, epochs=4), out)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'; use auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="'cuda' asked for, but CUDA is not available"):
            resolve_device("cuda")


def test_run_writes_files_metrics_and_checkpoints(refine_run: tuple[Path, dict]) -> None:
    out, summary = refine_run
    names = sorted(p.name for p in out.iterdir())
    assert names == ["best.pt", "config.json", "epoch_002.pt", "epoch_004.pt", "last.pt", "metrics.jsonl"]  # no temp files
    lines = read_jsonl(out / "metrics.jsonl")
    assert [m["epoch"] for m in lines] == [1, 2, 3, 4] and lines == summary["history"]
    for key in ("train_loss", "val_loss", "iou_crack", "iou_taping", "dice_crack", "dice_taping", "neg_fp_crack",
                "negative_fp_rate", "mean_iou", "score", "epoch_time_s", "lr"):
        assert all(isinstance(m[key], float) for m in lines), key
    assert all(m["score"] == pytest.approx(m["mean_iou"] * (1 - m["negative_fp_rate"]) * (1 - m["unrelated_fp_rate"]))
               for m in lines)
    raw = torch.load(out / "last.pt", weights_only=True)
    assert raw["epoch"] == 4 and raw["configs"]["model"]["decoder"] == "refine"
    assert raw["encoders"]["visual"]["name"] == "vit_tiny_patch16_224" and raw["metrics"] == lines[-1]
    # "decoder" is the weight average (validated, used by predict); resume continues from the trained weights
    assert raw["state"]["ema_steps"] == 4 * 2  # 4 epochs of 8 images in batches of 4
    assert raw["decoder"].keys() == raw["state"]["train_decoder"].keys()
    assert any(not torch.equal(raw["decoder"][k], raw["state"]["train_decoder"][k]) for k in raw["decoder"])
    best_epoch = max(lines, key=lambda m: m["score"])["epoch"]
    assert load_checkpoint(out / "best.pt")["epoch"] == best_epoch == summary["best"]["epoch"]
    assert load_checkpoint(out / "epoch_002.pt")["metrics"] == lines[1]
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["batch_size"] == 4 and config["data"]["roots"]["crack"].endswith("cracks")


def test_feature_cache_counts(refine_run: tuple[Path, dict]) -> None:
    _, summary = refine_run
    n_train, n_val, epochs = 2 * N_TRAIN, 2 * N_VALID, 4
    # computed once: every train image at both flips, every validation image unflipped, every prompt
    assert summary["cache"]["visual_misses"] == 2 * n_train + n_val
    assert summary["cache"]["visual_hits"] == epochs * (n_train + n_val)
    assert summary["cache"]["text_misses"] == len(all_prompts())
    assert summary["cache"]["text_hits"] == epochs * (n_train + 3 * n_val)  # validation adds a prompt for another thing


@pytest.mark.parametrize("decoder", ["seed", "refine"])
def test_training_lowers_loss(roots: dict[str, Path], tmp_path: Path, decoder: str, refine_run: tuple[Path, dict]) -> None:
    history = refine_run[1]["history"] if decoder == "refine" else train(*tiny_configs(roots, decoder, epochs=4), tmp_path)["history"]
    # the validation set is fixed (training losses jump with the sampled negatives and flips)
    losses = [m["val_loss"] for m in history]
    assert losses[-1] < losses[0], losses


def test_resume_matches_uninterrupted_run(roots: dict[str, Path], tmp_path: Path, refine_run: tuple[Path, dict]) -> None:
    full_dir, full = refine_run
    train(*tiny_configs(roots, epochs=2), tmp_path)
    (tmp_path / "metrics.jsonl").open("a").write('{"epoch": 3, "train_loss": 9.0}\n')  # killed after logging, before last.pt
    resumed = train(*tiny_configs(roots, epochs=4), tmp_path, resume=tmp_path / "last.pt")
    assert resumed["epochs_run"] == 2
    for a, b in zip(full["history"], read_jsonl(tmp_path / "metrics.jsonl"), strict=True):
        assert a["epoch"] == b["epoch"]
        for key in ("train_loss", "val_loss", "iou_crack", "iou_taping", "negative_fp_rate"):
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), (a["epoch"], key)
    weights_a, weights_b = load_checkpoint(full_dir / "last.pt")["decoder"], load_checkpoint(tmp_path / "last.pt")["decoder"]
    for name, value in weights_a.items():
        torch.testing.assert_close(weights_b[name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_max_minutes_stops_cleanly(roots: dict[str, Path], tmp_path: Path) -> None:
    summary = train(*tiny_configs(roots, "seed", epochs=5, max_minutes=0.0), tmp_path)
    assert summary["stopped_early"] and summary["epochs_run"] == 1
    assert {p.name for p in tmp_path.glob("*.pt")} == {"best.pt", "last.pt"}
    assert len(read_jsonl(tmp_path / "metrics.jsonl")) == 1


def test_no_cache_recomputes_encoders_same_result(roots: dict[str, Path], tmp_path: Path) -> None:
    cached = train(*tiny_configs(roots, "seed", epochs=1), tmp_path / "cached")
    uncached = train(*tiny_configs(roots, "seed", epochs=1, cache="none"), tmp_path / "uncached")
    assert uncached["cache"]["visual_hits"] == 0 and uncached["cache"]["visual_misses"] == 2 * N_TRAIN + 2 * N_VALID
    # float16 cached features vs float32 recomputed ones: the same training within rounding
    assert uncached["history"][0]["train_loss"] == pytest.approx(cached["history"][0]["train_loss"], rel=2e-3)
    assert uncached["history"][0]["val_loss"] == pytest.approx(cached["history"][0]["val_loss"], rel=2e-3)


def test_bad_inputs(roots: dict[str, Path], tmp_path: Path, refine_run: tuple[Path, dict]) -> None:
    full_dir = refine_run[0]
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        train(*tiny_configs(roots, device="gpu0"), tmp_path / "a")
    with pytest.raises(FileExistsError, match="already holds a training run .*--resume"):
        train(*tiny_configs(roots), full_dir)
    with pytest.raises(CheckpointError, match="another model .*decoder: checkpoint 'refine' vs now 'seed'"):
        train(*tiny_configs(roots, "seed"), tmp_path / "b", resume=full_dir / "last.pt")
    data_cfg, model_cfg, train_cfg = tiny_configs(roots)
    model_cfg.visual_layers = (0, 5)
    with pytest.raises(CheckpointError, match="visual_layers: checkpoint \\[-1\\] vs now \\[0, 5\\]"):
        train(data_cfg, model_cfg, train_cfg, tmp_path / "c", resume=full_dir / "last.pt")
    empty = tmp_path / "empty"
    (empty / "train" / "images").mkdir(parents=True)
    (empty / "train" / "masks").mkdir(parents=True)
    with pytest.raises(ValueError, match="empty.train .*no images"):
        train(*tiny_configs({"crack": empty}), tmp_path / "d")
    truncated = tmp_path / "bad.pt"
    truncated.write_bytes((full_dir / "last.pt").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="bad.pt: cannot read checkpoint"):
        train(*tiny_configs(roots), tmp_path / "e", resume=truncated)
    assert not list(tmp_path.rglob("*.pt.*")) and not list((tmp_path).rglob(".*.pt"))  # no partial checkpoints


def test_cli_train_and_resume(roots: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", f"crack={roots['crack']}", "--drywall-path", str(roots["taping"]), "--out", str(out),
            "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--decoder", "seed", "--visual-model",
            "vit_tiny_patch16_224", "--visual-weights", "random", "--text-weights", "random", "--no-augment", "--save-interval", "1", "--cache", "disk"]
    assert main(args) == 0
    assert "best epoch 1: IoU crack" in capsys.readouterr().out
    assert len(list((out / "cache").rglob("*.pt"))) == 2 * 2 * N_TRAIN + 2 * N_VALID + len(all_prompts())
    assert main(["train", "--out", str(out), "--epochs", "2", "--resume"]) == 0  # everything else from last.pt
    assert [m["epoch"] for m in read_jsonl(out / "metrics.jsonl")] == [1, 2]
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["configs"]["model"]["decoder"] == "seed" and ckpt["configs"]["train"]["epochs"] == 2
    assert ckpt["configs"]["train"]["cache"] == "disk" and ckpt["metrics"]["cache"]["visual_misses"] == 0
    assert ckpt["configs"]["data"]["augment"] is False  # --no-augment, kept on resume
    assert main(args[:-4] + ["--device", "tpu", "--out", str(tmp_path / "x")]) == 1
    assert "textseg train: error: unknown device 'tpu'" in capsys.readouterr().err


def test_selection_prefers_a_segmenting_epoch_over_an_empty_one() -> None:
    from textseg.engine.train import summarise_validation

    def sums(tp: int, fp: int, fn: int, neg_fp: int) -> dict[str, float]:
        per_class = {f"{c}_{k}": v for c in ("crack", "taping") for k, v in
                     (("tp", tp), ("fp", fp), ("fn", fn), ("n", 4), ("neg_fp", neg_fp))}
        return {"loss": 1.0, "pairs": 8, **per_class}

    empty = summarise_validation(sums(tp=0, fp=0, fn=100, neg_fp=0))
    segmenting = summarise_validation(sums(tp=40, fp=20, fn=60, neg_fp=2))
    ignores_prompt = summarise_validation(sums(tp=60, fp=20, fn=40, neg_fp=4))
    assert empty["score"] == 0.0 and ignores_prompt["score"] == 0.0
    assert segmenting["score"] == pytest.approx(40 / 120 * 0.5)


def test_a_non_finite_loss_stops_the_run_and_keeps_earlier_checkpoints(
    roots: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import textseg.engine.train as train_module

    real_epoch, calls = train_module.train_epoch, []

    def nan_in_epoch_two(*args, **kwargs) -> float:
        calls.append(1)
        loss = real_epoch(*args, **kwargs)
        return float("nan") if len(calls) == 2 else loss

    monkeypatch.setattr(train_module, "train_epoch", nan_in_epoch_two)
    out = tmp_path / "run"
    with pytest.raises(FloatingPointError, match=r"training loss became nan in epoch 2; .*last\.pt with a lower --lr"):
        train(*tiny_configs(roots, epochs=3, save_interval=1), out)
    assert load_checkpoint(out / "last.pt")["epoch"] == 1 and [m["epoch"] for m in read_jsonl(out / "metrics.jsonl")] == [1]


def test_augmented_training_runs_and_resumes_to_the_same_result(roots: dict[str, Path], tmp_path: Path) -> None:
    data_cfg, model_cfg, train_cfg = tiny_configs(roots, "seed", epochs=2)
    assert data_cfg.augment  # the default
    full = train(data_cfg, model_cfg, train_cfg, tmp_path / "full")
    assert all(np.isfinite(m["train_loss"]) for m in full["history"])
    plain = train(dataclasses.replace(data_cfg, augment=False), model_cfg, train_cfg, tmp_path / "plain")
    assert full["history"][0]["train_loss"] != pytest.approx(plain["history"][0]["train_loss"], rel=1e-6)  # it did change the examples
    train(data_cfg, model_cfg, dataclasses.replace(train_cfg, epochs=1), tmp_path / "part")
    resumed = train(data_cfg, model_cfg, train_cfg, tmp_path / "part", resume=tmp_path / "part" / "last.pt")
    assert resumed["history"][-1]["train_loss"] == pytest.approx(full["history"][-1]["train_loss"], rel=1e-5)


def test_image_size_above_224_trains_and_predicts_at_that_size(roots: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from textseg.predictor import Segmenter

    out = tmp_path / "run96"
    args = ["train", "--data", f"crack={roots['crack']}", "--data", f"taping={roots['taping']}", "--out", str(out), "--epochs", "1",
            "--batch-size", "4", "--device", "cpu", "--visual-model", "vit_tiny_patch16_224", "--visual-weights", "random",
            "--text-weights", "random", "--dim", "32", "--refine-width", "8", "--queries", "pixel", "--image-size", "96"]
    assert main(args) == 0
    configs = load_checkpoint(out / "best.pt")["configs"]
    assert configs["data"]["image_size"] == 96 and configs["model"]["refine_size"] == 96  # one flag sets both
    seg = Segmenter.from_checkpoint(out / "best.pt", device="cpu")
    photo = np.full((50, 70, 3), 128, np.uint8)
    encoded = seg.encode_images([photo])
    assert seg.image_size == 96 and seg.decode(encoded, ["segment crack"])[0][0].shape == (50, 70)
    with torch.no_grad():
        logits = seg._forward(encoded, ["segment crack"])[0]
    assert logits.shape[-2:] == (96, 96)  # the decoder answers at its input's size
    vit = tmp_path / "vit96"  # ViT queries: the ViT sees each 96-px image at its own 224 px
    assert main(args[:-3] + ["vit", "--image-size", "96", "--out", str(vit), "--decoder", "seed"]) == 0
    seg = Segmenter.from_checkpoint(vit / "best.pt", device="cpu")
    assert seg.decode(seg.encode_images([photo]), ["segment crack"])[0][0].shape == (50, 70)
    capsys.readouterr()
    assert main(args[:-1] + ["100", "--out", str(tmp_path / "x")]) == 1
    assert "image_size 100: use a multiple of 32" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before anything was written
