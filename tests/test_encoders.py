"""Tests of the frozen encoders: shapes, padding masks, freezing, prompts and weight options."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
import timm
import torch

import textseg.model.encoders as enc
from textseg.config import ModelConfig
from textseg.files import file_hash
from textseg.model.encoders import TextEncoder, VisualEncoder, WeightsUnavailableError, build_encoders, encoder_identity

TINY = "vit_tiny_patch16_224"


@pytest.fixture(scope="module")
def text_encoder() -> TextEncoder:
    return TextEncoder("ViT-B/32", "random", seed=0)


@pytest.fixture(scope="module")
def visual_encoder() -> VisualEncoder:
    return VisualEncoder(TINY, "random", seed=0)


def test_visual_shapes_and_frozen(visual_encoder: VisualEncoder) -> None:
    images = torch.rand(2, 3, 224, 224)
    tokens = visual_encoder(images)
    assert tokens.shape == (2, 196, 192)
    assert visual_encoder.out_dim == 192 and visual_encoder.grid == 14
    assert not any(p.requires_grad for p in visual_encoder.parameters())
    visual_encoder.train()
    assert not visual_encoder.training and not visual_encoder.vit.training
    assert not tokens.requires_grad


def test_visual_matches_timm_last_layer(visual_encoder: VisualEncoder) -> None:
    images = torch.rand(1, 3, 224, 224)
    normalised = (images - visual_encoder.mean) / visual_encoder.std
    with torch.no_grad():
        reference = visual_encoder.vit.forward_features(normalised)[:, 1:]  # drop CLS
    assert torch.allclose(visual_encoder(images), reference, atol=1e-5)


def test_visual_multi_layer_out_dim_and_blocks() -> None:
    encoder = VisualEncoder(TINY, "random", layers=(2, 5, -1), seed=0)
    assert encoder.out_dim == 3 * 192 and encoder.identity["layers"] == [2, 5, 11]
    tokens = encoder(torch.rand(1, 3, 224, 224))
    assert tokens.shape == (1, 196, 576)
    early = VisualEncoder(TINY, "random", layers=(2,), seed=0)
    assert torch.allclose(early(torch.rand(1, 3, 224, 224) * 0 + 0.5), encoder(torch.full((1, 3, 224, 224), 0.5))[..., :192])


def test_visual_bad_layers_and_image_size() -> None:
    with pytest.raises(ValueError, match="out of range"):
        VisualEncoder(TINY, "random", layers=(12,))
    encoder = VisualEncoder(TINY, "random")
    with pytest.raises(ValueError, match=r"\(B, 3, 224, 224\)"):
        encoder(torch.rand(1, 3, 100, 100))


def test_visual_random_is_seeded() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = VisualEncoder(TINY, "random", seed=1)
    after = torch.rand(1)
    b = VisualEncoder(TINY, "random", seed=1)
    c = VisualEncoder(TINY, "random", seed=2)
    assert torch.equal(before, after)  # the global RNG is left untouched
    assert torch.equal(a.vit.blocks[0].attn.qkv.weight, b.vit.blocks[0].attn.qkv.weight)
    assert not torch.equal(a.vit.blocks[0].attn.qkv.weight, c.vit.blocks[0].attn.qkv.weight)


def test_text_shapes_padding_and_frozen(text_encoder: TextEncoder) -> None:
    tokens = text_encoder.tokenize(["segment crack", "a much longer drywall joint tape prompt"])
    features, padding = text_encoder(tokens)
    assert features.shape == (2, 77, 512) and padding.shape == (2, 77) and padding.dtype == torch.bool
    eot = tokens.argmax(-1)
    for row in range(2):
        expected = torch.arange(77) > eot[row]
        assert torch.equal(padding[row], expected)
        assert not padding[row, eot[row]]  # end-of-text itself is attended
    assert int((~padding[0]).sum()) == 4  # <sot> segment crack <eot>
    assert not any(p.requires_grad for p in text_encoder.parameters())
    assert not hasattr(text_encoder, "visual")
    encoded, _ = text_encoder.encode(["segment crack"])
    assert torch.allclose(encoded[0], features[0], atol=1e-5)


def test_empty_prompt_raises(text_encoder: TextEncoder) -> None:
    with pytest.raises(ValueError, match="empty prompt at position 1"):
        text_encoder.tokenize(["crack", "   "])


def test_overlong_prompt_warns_and_truncates(text_encoder: TextEncoder) -> None:
    with pytest.warns(UserWarning, match="truncated"):
        tokens = text_encoder.tokenize(["crack " * 100])
    assert tokens.shape == (1, 77)
    assert int(tokens[0, -1]) == int(tokens.max())  # end-of-text kept as the last token


def _forbid(*args: object, **kwargs: object) -> None:
    raise AssertionError("no download may be attempted when the hub is unreachable")


def test_pretrained_fails_fast_when_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enc, "host_reachable", lambda host, timeout=3.0: False)
    monkeypatch.setattr(enc.clip, "load", _forbid)
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match=r"--visual-weights PATH or choose --visual-weights random"):
        VisualEncoder(TINY, "pretrained")
    with pytest.raises(WeightsUnavailableError, match=r"--text-weights PATH or choose --text-weights random"):
        TextEncoder("ViT-B/32", "pretrained")
    assert time.monotonic() - start < 5


def test_pretrained_download_error_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_create(name: str, pretrained: bool = False, **kwargs: object) -> torch.nn.Module:
        if pretrained:
            raise OSError("connection reset\nsecond line")
        return timm.create_model(name, pretrained=False, **kwargs)

    def failing_clip_load(*args: object, **kwargs: object) -> None:
        raise OSError("urlopen error timed out")

    monkeypatch.setattr(enc, "host_reachable", lambda host, timeout=3.0: True)
    monkeypatch.setattr(enc.timm, "create_model", failing_create)
    monkeypatch.setattr(enc.clip, "load", failing_clip_load)
    monkeypatch.setattr(enc, "Path", _NoCachePath)
    with pytest.raises(WeightsUnavailableError) as info:
        VisualEncoder(TINY, "pretrained")
    assert "\n" not in str(info.value) and "connection reset" in str(info.value)
    with pytest.raises(WeightsUnavailableError, match="urlopen error timed out"):
        TextEncoder("ViT-B/32", "pretrained")


class _NoCachePath(type(Path())):  # type: ignore[misc]
    """A Path whose files never exist, so no cached CLIP download is found."""

    def is_file(self) -> bool:
        return False


def test_missing_weights_file() -> None:
    with pytest.raises(FileNotFoundError, match="--visual-weights 'nope.pth'"):
        VisualEncoder(TINY, "nope.pth")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_visual_local_file_round_trip(tmp_path: Path, suffix: str) -> None:
    source = VisualEncoder(TINY, "random", seed=5)
    path = tmp_path / f"tiny{suffix}"
    state = source.vit.state_dict()
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    loaded = VisualEncoder(TINY, str(path), seed=0)
    images = torch.rand(1, 3, 224, 224)
    assert torch.allclose(loaded(images), source(images), atol=1e-6)
    assert loaded.identity["weights"] == path.name
    assert loaded.identity["sha256"] == file_hash(path) and len(loaded.identity["sha256"]) == 64


def test_visual_file_of_other_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "small.pth"
    torch.save(timm.create_model("vit_small_patch16_224", pretrained=False).state_dict(), path)
    with pytest.raises((ValueError, RuntimeError), match="small.pth"):
        VisualEncoder(TINY, str(path))


def test_text_local_file_round_trip(tmp_path: Path) -> None:
    from clip.model import CLIP, convert_weights

    torch.manual_seed(0)
    tiny = CLIP(32, 32, 1, 64, 16, 77, 49408, 64, 1, 2)  # embed, image: res/layers/width/patch, text: ctx/vocab/width/heads/layers
    convert_weights(tiny)  # CLIP files hold fp16 weights; loading converts to fp32
    tiny.float()
    path = tmp_path / "tiny_clip.pt"
    torch.save(tiny.state_dict(), path)
    encoder = TextEncoder("ViT-B/32", str(path))
    assert encoder.out_dim == 64 and not hasattr(encoder, "visual")
    tokens = encoder.tokenize(["segment crack"])
    features, padding = encoder(tokens)
    with torch.no_grad():
        x = tiny.token_embedding(tokens) + tiny.positional_embedding
        reference = tiny.ln_final(tiny.transformer(x.permute(1, 0, 2)).permute(1, 0, 2))
    assert features.shape == (1, 77, 64) and torch.allclose(features, reference, atol=1e-4)
    assert encoder.identity == {
        "name": "ViT-B/32", "weights": "tiny_clip.pt", "sha256": file_hash(path), "seed": None, "layers": None,
    }


def test_build_encoders_and_identity() -> None:
    cfg = ModelConfig(visual_model=TINY, visual_layers=(-1,), init_seed=3, visual_weights="random", text_weights="random", queries="vit")
    visual, text = build_encoders(cfg)
    identity = encoder_identity(visual, text)
    assert identity["visual"] == {"name": TINY, "weights": "random", "sha256": None, "seed": 3, "layers": [11]}
    assert identity["text"]["name"] == "all-MiniLM-L6-v2" and identity["text"]["seed"] == 3  # the default text encoder
    assert text.out_dim == 384 and visual.out_dim == 192
    _, clip_text = build_encoders(dataclasses.replace(cfg, text_encoder="clip"))
    assert encoder_identity(visual, clip_text)["text"]["name"] == "ViT-B/32" and clip_text.out_dim == 512
