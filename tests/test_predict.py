"""Segmenter and `textseg predict`: original-size outputs, batching, encode-once, odd inputs, bad inputs."""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, JpegImagePlugin

from textseg.cli import main
from textseg.config import INPUT_SIZE, ModelConfig
from textseg.data.images import load_image, load_mask
from textseg.model.checkpoint import CheckpointError
from textseg.batch_io import in_background, predict_files, write_predictions
from textseg.predictor import Prediction, Segmenter, Tiling, blend_window, tile_starts, to_rgb
from textseg.drawing import overlay

from conftest import TINY, make_checkpoint, wall_photo

@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt")


@pytest.fixture(scope="module")
def seg(ckpt: Path) -> Segmenter:
    return Segmenter.from_checkpoint(ckpt, device="cpu")


def _save(tmp: Path, name: str, h: int = 50, w: int = 80, seed: int = 0) -> Path:
    path = tmp / name
    Image.fromarray(wall_photo(h, w, seed)).save(path)
    return path


def test_prediction_at_original_size_with_attention(seg: Segmenter) -> None:
    (pred,) = seg.predict([wall_photo(50, 80)], "segment crack", threshold=0.3, return_attention=True)
    assert isinstance(pred, Prediction)
    assert pred.prob.shape == (50, 80) and pred.prob.dtype == np.float32
    assert pred.mask.dtype == bool and (pred.mask == (pred.prob > 0.3)).all()
    assert 0.0 <= pred.prob.min() <= pred.prob.max() <= 1.0
    assert pred.tokens == ["[CLS]", "segment", "crack", "[SEP]"] and pred.prompt == "segment crack"
    assert pred.attention.shape == (8, (TINY.refine_size // 16) ** 2, 64)  # queries: the pixel encoder's 1/16 grid
    rounding = 1e-5 if seg.dtype is None else 1e-2  # bf16 autocast (CPUs with AMX / AVX512-BF16) keeps ~3 digits
    assert np.allclose(pred.attention.sum(-1), 1.0, atol=rounding)  # softmax over text tokens
    assert np.abs(pred.attention[..., len(pred.tokens) :]).max() == 0.0  # never attends to padding
    lower = pred.with_threshold(0.1)
    assert (lower.mask == (pred.prob > 0.1)).all() and lower.threshold == 0.1 and lower.prob is pred.prob
    assert seg.predict([wall_photo(50, 80)], "segment crack")[0].attention is None
    crack, taping = seg.predict([wall_photo(50, 80)] * 2, ["segment crack", "segment taping area"])  # each prompt's default
    assert (crack.threshold, taping.threshold) == (0.5, 0.3) and (taping.mask == (taping.prob > 0.3)).all()
    assert pred.with_threshold(None).threshold == 0.5  # back to the prompt's default
    stats = pred.stats()
    assert stats["width"] == 80 and stats["height"] == 50
    assert stats["foreground_pixels"] == int(pred.mask.sum())
    assert stats["foreground_fraction"] == pytest.approx(pred.mask.mean())


def test_batched_equals_one_at_a_time(seg: Segmenter) -> None:
    images = [wall_photo(50, 80, 0), wall_photo(64, 64, 1), wall_photo(31, 47, 2), wall_photo(50, 80, 4)]
    prompts = ["segment crack", "drywall seam", "segment crack", "wall crack"]
    batched = seg.predict(images, prompts, batch_size=3)
    single = [seg.predict([img], [p], batch_size=1)[0] for img, p in zip(images, prompts)]
    for b, s, img in zip(batched, single, images):
        assert b.prob.shape == img.shape[:2]
        np.testing.assert_allclose(b.prob, s.prob, atol=1e-5)
        assert b.prompt == s.prompt
    assert not np.allclose(batched[0].prob, batched[3].prob)  # different image and prompt, different map
    with pytest.raises(ValueError, match="2 prompts for 4 images"):
        seg.predict(images, ["a", "b"])


@pytest.fixture(scope="module")
def ckpt_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint whose cross-attention queries are ViT tokens (the design with real ViT weights)."""
    return make_checkpoint(tmp_path_factory.mktemp("ckpt_vit") / "best.pt", dataclasses.replace(TINY, queries="vit"))


@pytest.fixture(scope="module")
def seg_vit(ckpt_vit: Path) -> Segmenter:
    return Segmenter.from_checkpoint(ckpt_vit, device="cpu")


def test_without_vit_no_visual_tokens(seg: Segmenter) -> None:
    assert seg.visual is None and seg.model_cfg.queries == "pixel"
    assert seg.encode_image(wall_photo(50, 80)).tokens is None


def test_encode_once_then_many_prompts(seg_vit: Segmenter, monkeypatch: pytest.MonkeyPatch) -> None:
    seg = seg_vit
    calls = {"visual": 0, "text": 0}
    visual_forward, text_forward = seg.visual.forward, seg.text.forward

    def count(name, fn):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(seg.visual, "forward", count("visual", visual_forward))
    monkeypatch.setattr(seg.text, "forward", count("text", text_forward))
    seg._prompts.clear()
    encoded = seg.encode_image(wall_photo(50, 80))
    assert encoded.size == (50, 80) and encoded.image.shape == (3, INPUT_SIZE, INPUT_SIZE)  # the checkpoint's default size
    first = seg.predict_encoded(encoded, "hairline crack", threshold=0.4)
    second = seg.predict_encoded(encoded, "taped joint", threshold=0.4, return_attention=True)
    again = seg.predict_encoded(encoded, "hairline crack", threshold=0.9)
    assert calls == {"visual": 1, "text": 2}  # one ViT pass; text features cached per prompt
    assert second.attention.shape == (8, 196, 64)  # ViT queries: 14 x 14 patches
    np.testing.assert_allclose(first.prob, again.prob)
    assert again.mask.sum() <= first.mask.sum()
    direct = seg.predict([wall_photo(50, 80)], "hairline crack")[0]
    np.testing.assert_allclose(first.prob, direct.prob, atol=1e-5)


def test_pixel_encoder_runs_once_per_image_whatever_the_prompts(seg: Segmenter, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    pixel_forward = seg.decoder.pixel.forward
    monkeypatch.setattr(seg.decoder.pixel, "forward", lambda images: calls.append(len(images)) or pixel_forward(images))
    encoded = seg.encode_images([wall_photo(50, 80, 0), wall_photo(40, 40, 1)])
    assert calls == [2] and [f.shape[0] for f in encoded[0].features] == seg.decoder.pixel.channels
    prompts = ["segment crack", "segment taping area", "drywall seam"]
    reused = seg.predict_encoded([encoded[0]] * 3 + [encoded[1]], prompts + ["wall crack"])
    assert calls == [2]  # four (image, prompt) pairs decoded, no further pass of the pixel encoder
    inline = seg.predict_encoded([dataclasses.replace(e, features=None) for e in [encoded[0]] * 3 + [encoded[1]]],
                                 prompts + ["wall crack"])
    assert calls == [2, 4]  # without stored features the decoder runs the encoder on every pair
    rounding = 1e-5 if seg.dtype is None else 2e-3  # bf16 autocast: batches of other sizes round differently
    for a, b in zip(reused, inline):
        np.testing.assert_allclose(a.prob, b.prob, atol=rounding)
    assert not np.allclose(reused[0].prob, reused[1].prob)  # each prompt still gets its own map


def test_grayscale_rgba_and_16bit_inputs(seg: Segmenter, tmp_path: Path) -> None:
    gray = (np.arange(50 * 80).reshape(50, 80) % 256).astype(np.uint8)
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    rgba = np.dstack([wall_photo(50, 80), np.full((50, 80), 255, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    deep = (gray.astype(np.uint16) * 257)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    paths = [tmp_path / "gray.png", tmp_path / "rgba.png", tmp_path / "deep.png"]
    preds = seg.predict(paths, "segment crack")
    assert [p.prob.shape for p in preds] == [(50, 80)] * 3
    assert [p.source for p in preds] == [str(p) for p in paths]
    np.testing.assert_array_equal(to_rgb(deep), load_image(tmp_path / "deep.png"))
    np.testing.assert_array_equal(to_rgb(gray), np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_array_equal(to_rgb(rgba), wall_photo(50, 80))
    np.testing.assert_allclose(preds[0].prob, preds[2].prob, atol=1e-5)  # 16-bit = same gray levels
    np.testing.assert_allclose(seg.predict([rgba], "segment crack")[0].prob, preds[1].prob, atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        to_rgb(np.zeros((4, 4, 2), np.uint8))


def test_prompt_errors_and_overlong_warning(seg: Segmenter) -> None:
    with pytest.raises(ValueError, match="empty prompt"):
        seg.predict([wall_photo(20, 20)], "   ")
    with pytest.raises(ValueError, match="threshold"):
        seg.predict([wall_photo(20, 20)], "crack", threshold=1.5)
    with pytest.warns(UserWarning, match="more than the text encoder's 64"):
        (pred,) = seg.predict([wall_photo(20, 20)], "crack " * 100)
    assert pred.prob.shape == (20, 20) and pred.tokens[0] == "[CLS]" and pred.tokens[-1] == "[SEP]" and len(pred.tokens) == 64


def test_bad_checkpoints_and_device(ckpt: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pt.*truncated, corrupt"):
        Segmenter.from_checkpoint(truncated, device="cpu")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt: not a textseg checkpoint"):
        Segmenter.from_checkpoint(foreign, device="cpu")
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        Segmenter.from_checkpoint(tmp_path / "nothing.pt", device="cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        Segmenter.from_checkpoint(ckpt, device="tpu")


def test_encoder_override_must_match_checkpoint(ckpt_vit: Path, tmp_path: Path) -> None:
    ckpt = ckpt_vit
    same = Segmenter.from_checkpoint(ckpt, device="cpu", visual_weights="random", text_weights="random")
    assert same.model_cfg.visual_weights == "random"
    import timm

    other = tmp_path / "vit_tiny_other.pth"
    torch.manual_seed(123)
    torch.save(timm.create_model("vit_tiny_patch16_224", pretrained=False).state_dict(), other)
    with pytest.raises(CheckpointError, match="trained with other encoders.*visual.weights"):
        Segmenter.from_checkpoint(ckpt, device="cpu", visual_weights=str(other))


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_writes_original_size_mask_and_red_overlay(seg: Segmenter, ckpt: Path, tmp_path: Path, capsys) -> None:
    a, b = _save(tmp_path, "wall_a.jpg", 50, 80, 0), _save(tmp_path, "wall_b.png", 64, 48, 1)
    probs = [p.prob for p in seg.predict([a, b], "segment crack")]
    threshold = float(np.median(probs[0]))  # an untrained model: pick a threshold that splits the image
    out = tmp_path / "out"
    code, stdout, err = _run(["predict", str(a), str(b), "--prompt", "segment crack", "--ckpt", str(ckpt),
                              "--out", str(out), "--threshold", str(threshold), "--device", "cpu", "--batch-size", "2"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["wall_a_mask.png", "wall_a_overlay.jpg", "wall_b_mask.png", "wall_b_overlay.jpg"]
    mask_img = Image.open(out / "wall_a_mask.png")
    assert mask_img.size == (80, 50) and mask_img.mode == "L"
    assert set(np.unique(np.asarray(mask_img))) == {0, 255}
    assert Image.open(out / "wall_b_mask.png").size == (48, 64)
    mask = load_mask(out / "wall_a_mask.png")
    np.testing.assert_array_equal(mask, probs[0] > threshold)
    shown = Image.open(out / "wall_a_overlay.jpg")
    assert shown.format == "JPEG" and JpegImagePlugin.get_sampling(shown) == 0  # 4:4:4: the red keeps its edges
    over = np.asarray(shown.convert("RGB")).astype(int)
    rgb = load_image(a).astype(int)
    assert np.abs(over - overlay(rgb.astype(np.uint8), mask)).mean() < 5.0  # up to JPEG loss (a speckled mask here)
    redness = over[..., 0] - over[..., 1:].mean(axis=-1) - (rgb[..., 0] - rgb[..., 1:].mean(axis=-1))
    assert redness[mask].mean() > 40 and abs(redness[~mask].mean()) < 3  # red on the mask, the photo elsewhere
    line = next(l for l in stdout.splitlines() if l.startswith("wall_a_mask.png"))
    assert f"foreground {int(mask.sum())} px ({mask.mean():.2%})" in line and "unique values [0, 255]" in line and "80x50" in line
    assert "for 2 of 2 images" in stdout


def test_background_writes_equal_inline_writes_in_order(seg: Segmenter, tmp_path: Path) -> None:
    photos = [_save(tmp_path, f"p{i}.png", 40 + 4 * i, 56, seed=i) for i in range(7)]
    written = {}
    for workers in (0, 2):
        out = tmp_path / f"out{workers}"
        out.mkdir()
        failed: list[str] = []
        results = predict_files(seg, photos, "segment crack", 0.5, 3, None, failed)
        written[workers] = [(path.name, pred.source) for path, pred in write_predictions(results, out, workers=workers)]
        assert failed == [] and len(list(out.iterdir())) == 2 * len(photos)
    assert written[0] == written[2] == [(f"p{i}_mask.png", str(photos[i])) for i in range(7)]  # input order
    for name in sorted(p.name for p in (tmp_path / "out0").iterdir()):
        assert (tmp_path / "out0" / name).read_bytes() == (tmp_path / "out2" / name).read_bytes(), name


def test_background_work_keeps_order_and_holds_at_most_workers_items() -> None:
    produced: list[int] = []

    def items():
        for i in range(12):
            produced.append(i)
            yield (i,)

    def work(i: int) -> int:
        time.sleep(0.002 * ((7 * i) % 3))  # finish out of order
        return i * i

    out, held = [], []
    for result in in_background(work, items(), workers=2):
        held.append(len(produced) - len(out))  # produced and not yet handed back, this one included
        out.append(result)
    assert out == [i * i for i in range(12)]
    assert max(held) == 3  # the two workers' items and the one handed back


def test_background_write_failure_raises_and_leaves_no_partial_files(seg: Segmenter, tmp_path: Path) -> None:
    rgb = wall_photo(30, 40)
    good = seg.predict([rgb], "segment crack")[0]
    results = [(tmp_path / "a.png", rgb, good), (tmp_path / "b.png", rgb[:20], good), (tmp_path / "c.png", rgb, good)]
    out = tmp_path / "out"
    out.mkdir()
    seen = []
    with pytest.raises(ValueError, match="shape"):  # b's photo does not match its mask: its overlay cannot be drawn
        for path, _ in write_predictions(results, out, workers=2):
            seen.append(path.name)
    assert seen == ["a_mask.png"]
    assert not (out / "b_mask.png").exists() and not (out / "b_overlay.jpg").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_cli_no_overlay_writes_masks_only(ckpt: Path, tmp_path: Path, capsys) -> None:
    a = _save(tmp_path, "wall_a.jpg", 50, 80, 0)
    out = tmp_path / "out"
    code, stdout, err = _run(["predict", str(a), "--prompt", "segment crack", "--ckpt", str(ckpt), "--out", str(out),
                              "--device", "cpu", "--no-overlay"], capsys)
    assert code == 0, err
    assert [p.name for p in out.iterdir()] == ["wall_a_mask.png"]
    assert Image.open(out / "wall_a_mask.png").size == (80, 50)
    assert "wrote masks for 1 of 1 images" in stdout


def test_cli_bad_images_skipped_and_reported(ckpt: Path, tmp_path: Path, capsys) -> None:
    good = _save(tmp_path, "good.png")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(good.read_bytes()[:40])
    missing = tmp_path / "missing.png"
    out = tmp_path / "out"
    code, stdout, err = _run(["predict", str(corrupt), str(good), str(missing), "--prompt", "crack",
                              "--ckpt", str(ckpt), "--out", str(out), "--device", "cpu"], capsys)
    assert code == 1
    assert "2 of 3 images could not be read" in err and "corrupt.jpg" in err and "missing.png" in err
    assert sorted(p.name for p in out.iterdir()) == ["good_mask.png", "good_overlay.jpg"]  # no partial or temp files
    assert "for 1 of 3 images" in stdout


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--prompt", ""], "empty prompt"),
        (["--prompt", "crack", "--device", "tpu"], "unknown device 'tpu'"),
        (["--prompt", "crack", "--threshold", "2"], "threshold must be in [0, 1]"),
    ],
)
def test_cli_errors_before_writing(ckpt: Path, tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    img = _save(tmp_path, "x.png")
    out = tmp_path / "out"
    code, _, err = _run(["predict", str(img), "--ckpt", str(ckpt), "--out", str(out), *extra], capsys)
    assert code == 1 and message in err
    assert not out.exists()


def test_cli_bad_checkpoint_and_clashing_names(tmp_path: Path, ckpt: Path, capsys) -> None:
    img = _save(tmp_path, "x.png")
    (tmp_path / "sub").mkdir()
    img2 = _save(tmp_path / "sub", "x.jpg")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    code, _, err = _run(["predict", str(img), "--prompt", "crack", "--ckpt", str(junk), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "junk.pt" in err and "cannot read checkpoint" in err
    code, _, err = _run(["predict", str(img), str(img2), "--prompt", "crack", "--ckpt", str(ckpt), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "would both write x_*.png" in err
    assert not (tmp_path / "o").exists()


def test_seed_decoder_checkpoint_also_predicts(tmp_path: Path) -> None:
    cfg = ModelConfig(visual_model="vit_tiny_patch16_224", decoder="seed", dim=32, heads=8, visual_weights="random", text_weights="random")
    seg = Segmenter.from_checkpoint(make_checkpoint(tmp_path / "seed.pt", cfg), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (pred,) = seg.predict([wall_photo(33, 57)], "segment taping area", return_attention=True)
    assert pred.prob.shape == (33, 57) and pred.attention.shape == (8, 196, 64)


# ------------------------------------------------------------------------------ tiled prediction


def test_tile_starts_cover_the_axis_and_window_fades() -> None:
    assert tile_starts(640, 224, 168) == [0, 168, 336, 416]  # last tile flush with the end
    assert tile_starts(224, 224, 168) == [0] and tile_starts(100, 224, 168) == [0]
    window = blend_window(224, 0.25)
    assert window.shape == (224, 224) and window.max() == 1.0 and window.min() > 0
    assert np.allclose(window, window.T) and np.allclose(window, window[::-1, ::-1])
    assert window[112, 0] < 0.05 and window[112, 28] == 1.0  # fades across the 28-px half overlap
    assert Tiling().side(300, 500) == 640 and Tiling().side(3000, 4000) == 3000  # the training photos' view
    assert Tiling(128).side(3000, 4000) == 128
    with pytest.raises(ValueError, match="overlap must be in"):
        Tiling(640, overlap=0.9)
    with pytest.raises(ValueError, match="at least 32"):
        Tiling(8)


def test_tiled_photo_no_larger_than_a_tile_is_predicted_whole(seg: Segmenter) -> None:
    photo = wall_photo(50, 80)
    (whole,) = seg.predict([photo], "segment crack")
    (tiled,) = seg.predict([photo], "segment crack", tiling=Tiling(size=80))
    assert np.array_equal(whole.prob, tiled.prob)


def _brightness_forward(calls: list[int], presence: float | None = None, tile_presence: float | None = None):
    """A stand-in for Segmenter._forward: pixel logits = logit(mean brightness), a fixed presence per call."""

    def forward(encoded, prompts, return_attention=False):
        images = torch.stack([e.image for e in encoded])  # (B, 3, S, S)
        pixel = torch.logit(images.mean(1, keepdim=True).clamp(1e-4, 1 - 1e-4))
        value = presence if not calls else tile_presence  # the first call sees the whole photo
        calls.append(len(encoded))
        gate = None if value is None else torch.full((len(encoded),), value)
        return pixel, gate, None

    return forward


def test_tiled_blending_has_no_seams(seg: Segmenter, monkeypatch: pytest.MonkeyPatch) -> None:
    yy, xx = np.mgrid[0:300, 0:500]
    gray = (40 + 170 * (0.5 + 0.5 * np.sin(xx / 37.0) * np.cos(yy / 23.0))).astype(np.uint8)  # smooth, no edges
    photo = np.repeat(gray[..., None], 3, axis=2)
    calls: list[int] = []
    monkeypatch.setattr(seg, "_forward", _brightness_forward(calls))
    prob = seg.tiled_probability(photo, "segment crack", Tiling(size=128, overlap=0.25, batch_size=5))
    assert prob.shape == (300, 500) and prob.dtype == np.float32
    assert calls[0] == 1 and sum(calls[1:]) == len(tile_starts(525, 224, 168)) * len(tile_starts(875, 224, 168))
    assert max(calls[1:]) == 5  # tiles go in batches
    assert np.abs(prob - gray / 255.0).max() < 0.03  # a seam or an unnormalised blend would stand out


def test_tiled_gate_comes_from_the_wholewall_photo(seg: Segmenter, monkeypatch: pytest.MonkeyPatch) -> None:
    photo = np.full((300, 500, 3), 230, np.uint8)  # bright: pixel probability about 0.9 everywhere
    monkeypatch.setattr(seg, "_forward", _brightness_forward([], presence=20.0, tile_presence=-20.0))
    kept = seg.predict([photo], "segment crack", tiling=Tiling(size=128))[0]
    assert kept.mask.all()  # tiles that "see no defect" do not switch the photo off
    monkeypatch.setattr(seg, "_forward", _brightness_forward([], presence=-20.0, tile_presence=20.0))
    gated = seg.predict([photo], "segment taping area", tiling=Tiling(size=128))[0]
    assert not gated.mask.any() and gated.prob.max() < 1e-6  # the photo does not show the class: empty


def test_tiled_real_model_batches_agree(ckpt: Path) -> None:
    # float32: on a CPU with hardware bf16 the checkpoint's autocast would round a batch of 1 and one of 6 differently
    seg = Segmenter.from_checkpoint(ckpt, device="cpu", amp=False)
    photo = wall_photo(300, 500)
    one = seg.tiled_probability(photo, "segment crack", Tiling(size=128, batch_size=1))
    many = seg.tiled_probability(photo, "segment crack", Tiling(size=128, batch_size=6))
    assert one.shape == (300, 500) and 0.0 <= one.min() <= one.max() <= 1.0
    assert np.allclose(one, many, atol=1e-4)
    with pytest.raises(ValueError, match="without tiling"):
        seg.predict([photo], "segment crack", tiling=Tiling(size=128), return_attention=True)


def test_exif_orientation_is_honoured(seg: Segmenter, ckpt: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    Image.fromarray(wall_photo(40, 90)).save(path, exif=exif)
    assert load_image(path).shape == (40, 90, 3) and to_rgb(path).shape == (90, 40, 3)
    out = tmp_path / "out"
    code, stdout, _ = _run(["predict", str(path), "--prompt", "crack", "--ckpt", str(ckpt), "--out", str(out),
                            "--device", "cpu", "--tile", "--tile-size", "32"], capsys)
    assert code == 0 and "tiles of 32 px" in stdout
    assert load_mask(out / "phone_mask.png").shape == (90, 40)
    code, _, err = _run(["predict", str(path), "--prompt", "crack", "--ckpt", str(ckpt), "--out", str(tmp_path / "o2"),
                         "--tile", "--overlap", "0.9"], capsys)
    assert code == 1 and "overlap must be in" in err and not (tmp_path / "o2").exists()


def test_cli_overlong_prompt_warns_in_one_line(ckpt: Path, tmp_path: Path, capsys) -> None:
    img = _save(tmp_path, "x.png")
    code, stdout, err = _run(["predict", str(img), "--prompt", "crack " * 500, "--ckpt", str(ckpt),
                              "--out", str(tmp_path / "o"), "--device", "cpu"], capsys)
    assert code == 0
    assert err.strip().splitlines() == [next(line for line in err.splitlines() if "warning" in line)]
    assert "textseg predict: warning: prompt" in err and "more than the text encoder's 64" in err and "ids =" not in err
    assert "..." in stdout and stdout.count("crack") < 20  # the echo is shortened
