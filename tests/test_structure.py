"""The package's seams: the composite model, the run folder, config validation and seeds, the command modules."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch

from conftest import TINY, make_checkpoint
from textseg.cli import COMMANDS
from textseg.config import DataConfig, ModelConfig, TrainConfig
from textseg.engine.runs import RunDir, describe_epoch
from textseg.model.build import TextSegModel, build_model
from textseg.model.checkpoint import checkpoint_configs, load_checkpoint
from textseg.model.decoder import DecoderOutput


def test_the_model_is_one_module_with_frozen_encoders() -> None:
    model = build_model(TINY, image_size=64)
    assert isinstance(model, TextSegModel) and isinstance(model, torch.nn.Module)
    assert model.cfg.refine_size == 64 and model.cfg.queries == "pixel" and model.visual is None
    images = torch.rand(2, 3, 64, 64)
    ids, text, padding = model.encode_prompts(["segment crack", "a cat"])
    assert ids.shape == padding.shape and text.shape[:2] == ids.shape
    tokens, features = model.encode_images(images)
    assert tokens is None and len(features) == 5
    model.train()
    assert model.decoder.training and not model.text.training  # the frozen text encoder keeps its dropout off
    out = model(images, text, padding, pixel_features=features)
    assert isinstance(out, DecoderOutput) and out.logits.shape == out.pixel_logits.shape == (2, 1, 64, 64)
    assert out.presence.shape == (2,) and out.prompt_class.shape == (2, 2)  # TINY reads prompts without a none output
    twin = model.with_decoder(model.decoder)
    assert twin.text is model.text and twin.decoder is model.decoder
    assert not any(p.requires_grad for p in model.text.parameters())


def test_refine_size_follows_the_input_size_unless_set() -> None:
    assert ModelConfig().resolved(96).refine_size == 96
    assert ModelConfig().resolved().refine_size == DataConfig().image_size
    assert ModelConfig(refine_size=128).resolved(96).refine_size == 128


@pytest.mark.parametrize("make, message", [
    (lambda: DataConfig(image_size=100), "image_size 100: use a multiple of 32"),
    (lambda: DataConfig(negative_rate=1.2), "negative_rate 1.2 must be in"),
    (lambda: DataConfig(negative_rate=0.6, unrelated_rate=0.5), "must stay below 1"),
    (lambda: ModelConfig(decoder="unet"), "decoder 'unet': choose one of"),
    (lambda: ModelConfig(text_encoder="bert"), "text_encoder 'bert': choose one of"),
    (lambda: TrainConfig(cache="ram"), "cache 'ram': choose one of"),
    (lambda: TrainConfig(batch_size=0), "batch_size must be >= 1"),
    (lambda: TrainConfig(pixel_lr_scale=-1), "pixel_lr_scale -1 must be >= 0"),
])
def test_configs_refuse_bad_values_when_made(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_checkpoints_with_one_seed_per_config_load_with_seeds_named_by_role(tmp_path: Path) -> None:
    path = make_checkpoint(tmp_path / "old.pt")
    payload = torch.load(path, weights_only=True)
    for part, name in (("data", "carve_seed"), ("model", "init_seed"), ("train", "shuffle_seed")):
        payload["configs"][part]["seed"] = payload["configs"][part].pop(name) + 4
    torch.save(payload, path)
    data, model, train = checkpoint_configs(load_checkpoint(path))
    assert (data.carve_seed, model.init_seed, train.shuffle_seed) == (4, 4, 4)


def test_run_dir_owns_the_file_names_and_the_history(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    assert (run.best.name, run.last.name, run.config.name, run.metrics.name, run.epoch(7).name) == (
        "best.pt", "last.pt", "config.json", "metrics.jsonl", "epoch_007.pt")
    assert run.history() == [] and run.best_epoch() is None and not run.holds_run()
    run.path.mkdir()
    run.write_history([{"epoch": 1, "score": 0.2}])
    run.append_epoch({"epoch": 2, "score": 0.5})
    run.append_epoch({"epoch": 3, "score": 0.5})
    assert [m["epoch"] for m in run.history()] == [1, 2, 3] and [m["epoch"] for m in run.history(upto=2)] == [1, 2]
    assert run.best_epoch()["epoch"] == 2  # the first of equals
    for path in (run.last, run.best, run.epoch(10)):
        path.write_bytes(b"x")
    assert run.holds_run()
    run.clear()
    assert not any(run.path.iterdir())
    (run.path / "metrics.jsonl").write_text('{"epoch": 1}\nnot json\n')
    with pytest.raises(ValueError, match="metrics.jsonl:2: not JSON"):
        run.history()


def test_epoch_lines_say_how_far_the_run_is() -> None:
    line = {"epoch": 12, "train_loss": 0.3125, "iou_crack": 0.41, "iou_taping": 0.52, "negative_fp_rate": 0.01,
            "epoch_time_s": 8.2}
    assert describe_epoch(line, 400, 3.21, 10, best=True) == (
        "epoch 12 of 400: train loss 0.312, IoU crack 0.41 taping 0.52, wrong prompts 1.0%, best so far, 8 s; "
        "3.2 of 10 min, training stops at the time limit")
    assert describe_epoch(line, 400, 3.21).endswith("; 3.2 min so far")


def test_every_command_lives_in_its_own_module_with_add_arguments_and_run() -> None:
    for command in COMMANDS:
        module = importlib.import_module(f"textseg.cli.{command.replace('-', '_')}")
        assert callable(module.add_arguments) and callable(module.run), command
    assert json.loads(json.dumps(sorted(COMMANDS))) == sorted(
        ["audit", "evaluate", "extract-masks", "inspect", "measure", "notebooks", "predict", "synth", "train"])
