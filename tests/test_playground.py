"""The playground's widgets and callbacks, driven directly (no browser)."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ipywidgets")

from textseg.data.images import save_rgb  # noqa: E402
from textseg.predictor import Prediction, to_rgb  # noqa: E402
from textseg.prompts import NONE, PromptMeaning, prompt_class, threshold_for  # noqa: E402
from textseg.workbook import playground as playground_module  # noqa: E402
from textseg.workbook.playground import attention_heatmap, build_playground, png_bytes, word_attention  # noqa: E402


class FakeSegmenter:
    """Counts encodes and decodes; "crack" prompts light the left half, others the top half, with a ramp."""

    def __init__(self) -> None:
        self.encodes = 0
        self.decodes = 0

    def encode_image(self, image):
        self.encodes += 1
        rgb = to_rgb(image)
        return type("Encoded", (), {"rgb": rgb, "size": rgb.shape[:2]})()

    @staticmethod
    def prompt_meaning(prompt: str) -> PromptMeaning:
        cls = prompt_class(prompt) or NONE
        return PromptMeaning(cls, {c: 0.9 if c == cls else 0.05 for c in ("crack", "taping", NONE)})

    def threshold(self, prompt: str, threshold: float | None = None) -> float:
        return threshold_for(prompt, threshold, self.prompt_meaning(prompt).cls)

    def predict_encoded(self, encoded, prompt, threshold=0.5, return_attention=False):
        self.decodes += 1
        h, w = encoded.size
        ramp = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :].repeat(h, 0)  # (H, W)
        prob = ramp[:, ::-1].copy() if "crack" in prompt else ramp.T[:h, :w] if h == w else ramp
        rng = np.random.default_rng(zlib.crc32(prompt.encode()))
        tokens = ["<start>", *prompt.split(), "<end>"]
        attention = rng.random((8, 196, 77)).astype(np.float32) if return_attention else None
        return Prediction(prob=prob, mask=prob > threshold, prompt=prompt, threshold=threshold,
                          attention=attention, tokens=tokens, meaning=self.prompt_meaning(prompt))


@pytest.fixture()
def images(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    out = {}
    for name in ("crack: a.png", "taping: b.png"):
        path = tmp_path / name.split(": ")[1]
        save_rgb(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8), path)
        out[name] = path
    return out


def decoded_mask(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png))) > 127


def test_initial_view_has_mask_overlay_attention_and_stats(images):
    ui = build_playground(FakeSegmenter(), images, prompt="segment crack", threshold=0.5)
    pg = ui.playground
    assert "play-ui" in ui._dom_classes
    mask = decoded_mask(pg.mask_view.value)
    assert mask.shape == (40, 40) and mask[:, :15].all() and not mask[:, 25:].any()  # crack: left half
    assert pg.overlay_view.value and pg.attention_view.value
    assert "prompt 'segment crack'" in pg.stats.value and "threshold 0.50" in pg.stats.value


def test_prompt_of_the_other_class_changes_mask_and_stats(images):
    seg = FakeSegmenter()
    pg = build_playground(seg, images, prompt="segment crack").playground
    before_mask, before_stats = pg.mask_view.value, pg.stats.value
    pg.prompt.value = "segment taping area"  # as typing + Enter in the browser does
    assert pg.mask_view.value != before_mask
    assert pg.stats.value != before_stats and "segment taping area" in pg.stats.value
    mask = decoded_mask(pg.mask_view.value)
    assert mask[12:, :].all() and not mask[:12, :].any()  # taping at its default 0.3: rows past 30% of the transposed ramp


def test_preset_dropdown_sets_the_prompt(images):
    pg = build_playground(FakeSegmenter(), images).playground
    pg.preset.value = "drywall seam"
    assert pg.prompt.value == "drywall seam"
    assert "drywall seam" in pg.stats.value


def test_the_class_a_typed_prompt_is_taken_to_mean_is_shown_beside_the_mask(images):
    pg = build_playground(FakeSegmenter(), images, prompt="segment crack").playground
    assert "play-meaning" in pg.meaning._dom_classes
    assert "taken to mean: <b>crack (0.90" in pg.meaning.value and "empty" not in pg.meaning.value
    stats = pg.update(prompt="segment the door")
    assert stats["meaning"] == NONE and stats["meaning_probs"][NONE] == 0.9
    assert "none of crack, taping (0.90" in pg.meaning.value and "the mask is empty" in pg.meaning.value
    pg.prompt.value = "drywall seams"
    assert "taken to mean: <b>taping" in pg.meaning.value and pg.threshold.value == 0.3  # the meaning's threshold
    pg.prompt.value = ""
    assert pg.meaning.value == ""


def test_threshold_changes_mask_without_decoding_again(images):
    seg = FakeSegmenter()
    pg = build_playground(seg, images, prompt="segment crack", threshold=0.5).playground
    fg = decoded_mask(pg.mask_view.value).sum()
    decodes = seg.decodes
    pg.threshold.value = 0.8
    assert decoded_mask(pg.mask_view.value).sum() < fg
    assert "threshold 0.80" in pg.stats.value
    assert seg.decodes == decodes  # re-thresholded, not re-decoded


def test_slider_follows_the_prompts_default_until_the_user_moves_it(images):
    seg = FakeSegmenter()
    pg = build_playground(seg, images, prompt="segment crack").playground
    assert pg.threshold.value == pytest.approx(0.5)
    pg.prompt.value = "segment taping area"
    assert pg.threshold.value == pytest.approx(0.3) and "threshold 0.30" in pg.stats.value
    assert seg.decodes == 2  # one decode per prompt: moving the slider for the prompt did not decode twice
    pg.threshold.value = 0.45  # the user's choice now holds across prompts
    pg.prompt.value = "segment crack"
    assert pg.threshold.value == pytest.approx(0.45) and "threshold 0.45" in pg.stats.value


def test_threshold_given_to_the_playground_stays_across_prompts(images):
    pg = build_playground(FakeSegmenter(), images, prompt="segment crack", threshold=0.6).playground
    pg.prompt.value = "segment taping area"
    assert pg.threshold.value == pytest.approx(0.6) and "threshold 0.60" in pg.stats.value


def test_image_encoded_once_across_prompts_and_thresholds(images):
    seg = FakeSegmenter()
    pg = build_playground(seg, images, prompt="segment crack").playground
    for prompt in ("crack", "segment taping area", "joint tape", "segment crack"):
        pg.prompt.value = prompt
        pg.threshold.value = 0.3 if pg.threshold.value != 0.3 else 0.6
    assert seg.encodes == 1 and pg.encode_count == 1
    assert seg.decodes == 4  # "segment crack" came back from the cache
    pg.image.value = "taping: b.png"
    pg.image.value = "crack: a.png"
    assert seg.encodes == 2


def test_only_the_images_and_prompts_used_last_are_kept(images, monkeypatch):
    monkeypatch.setattr(playground_module, "IMAGES_KEPT", 1)
    monkeypatch.setattr(playground_module, "PREDICTIONS_KEPT", 2)
    seg = FakeSegmenter()
    pg = build_playground(seg, images, prompt="segment crack").playground
    pg.prompt.value = "joint tape"
    pg.prompt.value = "segment crack"  # kept: no decode
    assert (seg.encodes, seg.decodes) == (1, 2)
    pg.prompt.value = "wall crack"  # a third prompt drops the least recently used one, "joint tape"
    pg.prompt.value = "joint tape"
    assert seg.decodes == 4 and len(pg._predictions) == 2
    pg.image.value = "taping: b.png"  # a second image drops the first one's encoding
    pg.image.value = "crack: a.png"
    assert seg.encodes == 3 and len(pg._encoded) == 1


def test_update_returns_stats_and_handles_empty_prompt(images):
    pg = build_playground(FakeSegmenter(), images).playground
    stats = pg.update(prompt="wall crack", threshold=0.5)
    assert stats["foreground_pixels"] == 40 * 20 and stats["foreground_fraction"] == pytest.approx(0.5)
    assert stats["defects"] == 1 and "1 defect, longest" in pg.stats.value  # measured as textseg inspect does
    assert stats["longest_px"] == pytest.approx(max(40, 20), rel=0.1) and stats["widest_px"] == pytest.approx(min(40, 20), abs=2)
    assert pg.update(prompt="   ") == {}
    assert "type a prompt" in pg.stats.value


def test_upload_adds_and_selects_the_image(images):
    seg = FakeSegmenter()
    pg = build_playground(seg, images).playground
    buf = io.BytesIO()
    Image.fromarray(np.full((30, 50), 90, np.uint8)).save(buf, format="PNG")  # grayscale upload
    pg._on_upload({"new": ({"name": "mine.png", "content": memoryview(buf.getvalue())},)})
    assert pg.image.value == "upload: mine.png"
    assert "image 50x30" in pg.stats.value
    pg._on_upload({"new": ({"name": "broken.png", "content": memoryview(b"not an image")},)})
    assert "cannot read upload: broken.png" in pg.stats.value


def test_word_attention_ignores_start_and_end_tokens():
    att = np.zeros((2, 196, 77), np.float32)
    att[:, :, 0] = 5.0  # <start>
    att[:, 7, 1] = 1.0  # "crack"
    out = word_attention(att, ["<start>", "crack", "<end>"])
    assert out.shape == (196,) and out[7] == 1.0 and out.sum() == 1.0
    heat = attention_heatmap(np.zeros((28, 28, 3), np.uint8), out)
    assert heat.shape == (28, 28, 3) and heat.dtype == np.uint8


def test_png_bytes_shrinks_large_images():
    img = Image.open(io.BytesIO(png_bytes(np.zeros((1000, 500), np.uint8), max_side=200)))
    assert img.size == (100, 200)


def test_real_segmenter_encodes_once_and_reacts(images):
    from textseg.config import ModelConfig
    from textseg.model.build import build_model
    from textseg.predictor import Segmenter

    cfg = ModelConfig(visual_model="vit_tiny_patch16_224", decoder="seed", visual_weights="random", text_weights="random")
    seg = Segmenter(build_model(cfg), device="cpu")
    calls = []
    original = seg.encode_image
    seg.encode_image = lambda image: calls.append(1) or original(image)
    pg = build_playground(seg, images, prompt="segment crack").playground
    first = pg.stats.value
    pg.prompt.value = "segment taping area"
    assert pg.stats.value != first and "max prob" in pg.stats.value
    prob = pg.prediction(pg.image.value, "segment taping area").prob
    pg.threshold.value = 0.05
    pg.threshold.value = round(float(np.median(prob)) * 20) / 20 or 0.05
    assert len(calls) == 1
    assert decoded_mask(pg.attention_view.value).shape[:2] == (40, 40)
