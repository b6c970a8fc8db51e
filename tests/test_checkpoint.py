"""Checkpoint files: round trip with weights_only, atomic writes, clear errors for bad or foreign files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from textseg.model.checkpoint import (
    CheckpointError,
    check_encoders,
    check_model_config,
    checkpoint_configs,
    load_checkpoint,
    load_decoder_state,
    save_checkpoint,
)
from textseg.config import DataConfig, ModelConfig, TrainConfig, to_dict

IDENTITY = {"visual": {"name": "vit_tiny_patch16_224", "weights": "random", "sha256": None, "seed": 0, "layers": [11]},
            "text": {"name": "ViT-B/32", "weights": "random", "sha256": None, "seed": 0, "layers": None}}


def _payload(model_cfg: ModelConfig | None = None) -> dict:
    layer = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-3)
    layer(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return {
        "decoder": layer.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": 3,
        "configs": {"data": to_dict(DataConfig(roots={"crack": "/x"})), "model": to_dict(model_cfg or ModelConfig()), "train": to_dict(TrainConfig())},
        "encoders": IDENTITY,
        "metrics": {"epoch": 3, "iou_crack": 0.25},
        "state": {"rng": [{"torch": torch.get_rng_state()}], "best_score": 0.1},
    }


def test_round_trip_loads_with_weights_only(tmp_path: Path) -> None:
    payload = _payload(ModelConfig(visual_layers=(3, 6, 9), decoder="seed"))
    path = save_checkpoint(tmp_path / "run" / "last.pt", payload)
    raw = torch.load(path, weights_only=True)  # only tensors and primitive containers inside
    assert raw["format"] == "textseg-checkpoint" and raw["version"] == 1
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3 and loaded["metrics"]["iou_crack"] == 0.25
    assert torch.equal(loaded["decoder"]["weight"], payload["decoder"]["weight"])
    assert loaded["optimizer"]["state"][0]["step"] == payload["optimizer"]["state"][0]["step"]
    data_cfg, model_cfg, train_cfg = checkpoint_configs(loaded)
    assert data_cfg.roots == {"crack": "/x"} and model_cfg.visual_layers == (3, 6, 9) and model_cfg.decoder == "seed"
    assert train_cfg == TrainConfig()
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary files left


def test_checkpoint_from_before_a_setting_loads_as_the_decoder_it_was(tmp_path: Path) -> None:
    payload = _payload(ModelConfig(refine_fold=2))
    assert load_checkpoint(save_checkpoint(tmp_path / "new.pt", payload))["configs"]["model"]["refine_fold"] == 2
    del payload["configs"]["model"]["refine_fold"]  # written before the space-to-depth option existed
    old = load_checkpoint(save_checkpoint(tmp_path / "old.pt", payload))
    assert checkpoint_configs(old)[1].refine_fold == 1
    check_model_config(old, ModelConfig(refine_fold=1))  # resuming it with its own settings is no mismatch
    with pytest.raises(CheckpointError, match="refine_fold: checkpoint 1 vs now 2"):
        check_model_config(old, ModelConfig(refine_fold=2))


def test_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "last.pt", _payload())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"last\.pt: cannot read checkpoint .*truncated, corrupt"):
        load_checkpoint(path)


def test_garbage_and_foreign_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="garbage.pt: cannot read checkpoint"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, foreign)
    with pytest.raises(CheckpointError, match=r"foreign.pt: not a textseg checkpoint \(found \['state_dict'\]\)"):
        load_checkpoint(foreign)
    tensor_file = tmp_path / "tensor.pt"
    torch.save(torch.ones(3), tensor_file)
    with pytest.raises(CheckpointError, match="not a textseg checkpoint"):
        load_checkpoint(tensor_file)
    with pytest.raises(FileNotFoundError, match="missing.pt: no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.pt"
    torch.save({"format": "textseg-checkpoint", "configs": ModelConfig()}, path)  # a dataclass: not weights-only safe
    with pytest.raises(CheckpointError, match="objects.pt: cannot read checkpoint"):
        load_checkpoint(path)


def test_failed_save_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"lacks keys \['encoders'\]"):
        save_checkpoint(tmp_path / "a.pt", {k: v for k, v in _payload().items() if k != "encoders"})
    bad = {**_payload(), "metrics": {"fn": lambda x: x}}  # cannot be pickled
    with pytest.raises(Exception):
        save_checkpoint(tmp_path / "b.pt", bad)
    assert list(tmp_path.iterdir()) == []


def test_encoder_and_model_mismatch(tmp_path: Path) -> None:
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "c.pt", _payload()))
    check_encoders(ckpt, IDENTITY)  # same encoders: fine
    other = {"visual": {**IDENTITY["visual"], "weights": "vit.safetensors", "sha256": "ab12"}, "text": IDENTITY["text"]}
    with pytest.raises(CheckpointError, match=r"other encoders \(visual.sha256: checkpoint None vs now 'ab12'; visual.weights"):
        check_encoders(ckpt, other, "c.pt")
    check_model_config(ckpt, ModelConfig())
    with pytest.raises(CheckpointError, match="another model .*decoder: checkpoint 'refine' vs now 'seed'"):
        check_model_config(ckpt, ModelConfig(decoder="seed"))


def test_decoder_weights_that_do_not_fit_name_the_file(tmp_path: Path) -> None:
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "c.pt", _payload()))
    load_decoder_state(torch.nn.Linear(3, 2), ckpt["decoder"], "c.pt")  # fits
    with pytest.raises(CheckpointError, match=r"c.pt: decoder weights do not fit this textseg's Linear \(size mismatch for weight"):
        load_decoder_state(torch.nn.Linear(4, 2), ckpt["decoder"], "c.pt")
    with pytest.raises(CheckpointError, match=r"do not fit .*Conv2d \(Unexpected key\(s\) in state_dict: \"bias\""):
        load_decoder_state(torch.nn.Conv2d(3, 2, 1, bias=False), ckpt["decoder"], "c.pt")
