"""The prompt playground: ipywidgets to pick an image, type a prompt, move the threshold, see the result.

    ui = build_playground(Segmenter.from_checkpoint("outputs/runs/main/best.pt"), images)
    ui                        # in a notebook cell; ui.playground is the Playground behind it

Each image is encoded once (ViT tokens and pixel-encoder features, kept for the images used last); a prompt is
decoded once per (image, prompt) and a threshold change only re-thresholds the kept probabilities, so typing and
sliding stay cheap. The slider follows each prompt's default threshold until the user moves it.
`Playground.update(...)` is the callback the widgets call; tests call it (or set widget values) directly.
"""

from __future__ import annotations

import html
import io
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, Sequence

from PIL import Image
from matplotlib import colormaps
import matplotlib.pyplot as plt
import numpy as np

from textseg.data.datasets import collect_split
from textseg.data.images import encode_png, to_rgb_array
from textseg.measure import measure_mask
from textseg.model.encoders import word_indices
from textseg import CLASSES
from textseg.prompts import canonical_prompt
from textseg.drawing import overlay, upsample_attention
from textseg.viz import save_figure

logger = logging.getLogger(__name__)

UPLOAD_PREFIX = "upload:"
IMAGES_KEPT = 8  # encoded images held (each with its photo and pixel-encoder features)
PREDICTIONS_KEPT = 32  # (image, prompt) results held (each a full-size probability map and attention)
PRESETS: tuple[str, ...] = (*(canonical_prompt(c) for c in CLASSES), "hairline crack", "cracked plaster", "drywall seam",
                            "joint tape", "segment the door")
"""The preset prompts offered beside the text box: each class's canonical prompt, a few others, and one for a thing
textseg does not segment (to show how that is answered)."""


def remembered(cache: OrderedDict, key: Hashable, make: Callable[[], Any], size: int) -> Any:
    """cache[key], made on first use; beyond `size` entries the least recently used one is dropped, so a session
    with many uploaded photos and prompts does not keep every full-size result."""
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    cache[key] = value = make()
    while len(cache) > size:
        cache.popitem(last=False)
    return value


def playground_images(roots: Mapping[str, str | Path], split: str = "valid", per_class: int = 6,
                      val_fraction: float = 0.15, seed: int = 0) -> dict[str, str]:
    """{"crack: name.jpg": path} with up to `per_class` images of each class from a split of CLASS=ROOT datasets."""
    out: dict[str, str] = {}
    for cls, root in roots.items():
        samples = collect_split({cls: root}, split, val_fraction, seed)[:per_class]
        out.update({f"{s.cls}: {s.image.name}": str(s.image) for s in samples})
    if not out:
        raise ValueError(f"no images in split {split!r} of {dict(roots)}")
    return out


def png_bytes(image: np.ndarray, max_side: int = 384) -> bytes:
    """PNG of a uint8 (H, W) or (H, W, 3) array, shrunk so its longer side is at most max_side."""
    img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    scale = max_side / max(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
    return encode_png(np.asarray(img))


def word_attention(attention: np.ndarray, tokens: Sequence[str]) -> np.ndarray:
    """Mean over heads and over the prompt's words (not the start and end markers) of (heads, N, T) attention; (N,)."""
    words = word_indices(tokens) or list(range(len(tokens)))
    return np.asarray(attention, dtype=np.float32)[:, :, words].mean(axis=(0, 2))  # (196,)


UNKNOWN_NOTE = "textseg segments cracks and taping seams only, so the mask is empty"
"""What the playground adds beside a prompt taken to mean none of the classes."""


def meaning_html(meaning: Any) -> str:
    """How the playground shows what a prompt is taken to mean: the class in bold, the probabilities beside it, and for
    a prompt that names no class, why the mask is empty."""
    note = "" if meaning.known else f" &mdash; {UNKNOWN_NOTE}"
    return f"<span>taken to mean: <b>{html.escape(meaning.describe())}</b>{note}</span>"


def meaning_line(meaning: Any) -> str:
    """The same as one line of plain text (the snapshot's title)."""
    return f"taken to mean: {meaning.describe()}" + ("" if meaning.known else f" - {UNKNOWN_NOTE}")


def attention_heatmap(rgb: np.ndarray, attention: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """A (196,) attention map, min-max scaled, in the 'jet' colours blended over the image; uint8 (H, W, 3)."""
    heat = upsample_attention(attention, rgb.shape[:2])  # (H, W)
    span = float(heat.max() - heat.min())
    heat = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    colours = colormaps["jet"](heat)[..., :3] * 255.0  # (H, W, 3)
    return np.clip((1 - alpha) * rgb + alpha * colours, 0, 255).astype(np.uint8)


class Playground:
    """Widgets plus the state behind them: encoded images, decoded prompts, the current view."""

    def __init__(self, segmenter: Any, images: Mapping[str, str | Path] | Sequence[str | Path],
                 prompts: Sequence[str] | None = None, prompt: str | None = None, threshold: float | None = None,
                 max_side: int = 384) -> None:
        import ipywidgets as W

        self.segmenter = segmenter
        self.max_side = max_side
        self.sources: dict[str, str | Path | np.ndarray] = (
            dict(images) if isinstance(images, Mapping) else {Path(p).name: p for p in images}
        )
        if not self.sources:
            raise ValueError("the playground needs at least one image")
        self.encode_count = 0  # ViT forwards run so far (one per image)
        self.decode_count = 0  # decoder passes run so far (one per image and prompt)
        self._encoded: OrderedDict[str, Any] = OrderedDict()
        self._predictions: OrderedDict[tuple[str, str], Any] = OrderedDict()
        presets = list(prompts) if prompts is not None else list(PRESETS)
        first = prompt or canonical_prompt("crack")

        self.image = W.Dropdown(options=list(self.sources), description="image", layout=W.Layout(width="420px"))
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload")
        self.prompt = W.Text(value=first, description="prompt", continuous_update=False,
                             placeholder="e.g. segment crack", layout=W.Layout(width="420px"))
        self.preset = W.Dropdown(options=[("(preset prompts)", "")] + [(p, p) for p in presets], value="",
                                 description="presets", layout=W.Layout(width="300px"))
        # The slider follows the prompt's default (textseg.prompts.threshold_for: crack and taping differ) until the
        # user moves it or passes `threshold`; from then on it stays where they put it.
        self.follows_prompt = threshold is None
        self._syncing = False  # a slider move made by the prompt, not the user
        self.threshold = W.FloatSlider(value=segmenter.threshold(first, threshold), min=0.01, max=0.99, step=0.01, description="threshold",
                                       readout_format=".2f", continuous_update=True)
        panel = dict(max_width="32%", border="1px solid #bbb", margin="2px")  # a white (all-foreground) mask stays visible
        self.mask_view = W.Image(format="png", layout=W.Layout(**panel))
        self.overlay_view = W.Image(format="png", layout=W.Layout(**panel))
        self.attention_view = W.Image(format="png", layout=W.Layout(**panel))
        self.stats = W.Label(value="")
        self.meaning = W.HTML(value="")  # the class the typed prompt is taken to mean, beside the mask
        self.shown_meaning: Any = None  # the PromptMeaning behind it (None: nothing shown)
        caption = W.HTML("<b>mask</b> &nbsp;|&nbsp; <b>overlay</b> (mask in red) &nbsp;|&nbsp; "
                         "<b>attention</b> (decoder cross-attention to the prompt's words, mean over heads)")
        self.ui = W.VBox([
            W.HBox([self.image, self.upload]),
            W.HBox([self.prompt, self.preset]),
            self.meaning,
            self.threshold,
            caption,
            W.HBox([self.mask_view, self.overlay_view, self.attention_view]),
            self.stats,
        ])
        self.ui.add_class("play-ui")  # CSS hooks for the browser test
        self.stats.add_class("play-stats")
        self.meaning.add_class("play-meaning")
        for view, name in ((self.mask_view, "play-mask"), (self.overlay_view, "play-overlay"), (self.attention_view, "play-attention")):
            view.add_class(name)
        self.ui.playground = self  # type: ignore[attr-defined]  # reach the state from the widget

        self.image.observe(lambda change: self.update(), names="value")
        self.prompt.observe(self._on_prompt, names="value")
        self.threshold.observe(self._on_threshold, names="value")
        self.preset.observe(self._on_preset, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.update()

    # ----------------------------------------------------------------------------- callbacks

    def _on_prompt(self, change: dict) -> None:
        """Move the slider to the new prompt's default unless the user has set it, then show the result once."""
        text = str(change["new"]).strip()
        if self.follows_prompt and text:
            self._syncing = True
            try:
                self.threshold.value = self.segmenter.threshold(text)
            finally:
                self._syncing = False
        self.update()

    def _on_threshold(self, change: dict) -> None:
        """A user's slider move pins the threshold; a move made by _on_prompt is shown by _on_prompt."""
        if self._syncing:
            return
        self.follows_prompt = False
        self.update()

    def _on_preset(self, change: dict) -> None:
        """Copy a chosen preset into the prompt box (which then updates the view)."""
        if change["new"]:
            self.prompt.value = change["new"]

    def _on_upload(self, change: dict) -> None:
        """Add uploaded image files to the image list and show the last one."""
        for item in change["new"] or ():
            name, content = item["name"], bytes(item["content"])
            self.add_image(f"{UPLOAD_PREFIX} {name}", content)

    def add_image(self, label: str, content: bytes | np.ndarray | str | Path) -> None:
        """Add an image (file bytes, an array, or a path) to the dropdown and select it."""
        if isinstance(content, bytes):

            try:
                content = to_rgb_array(Image.open(io.BytesIO(content)))
            except OSError as exc:
                self.stats.value = f"cannot read {label}: {exc}"
                return
        self.sources[label] = content
        self.image.options = list(self.sources)
        self.image.value = label

    def encoded(self, label: str) -> Any:
        """The image's encoding, computed on first use (kept for the IMAGES_KEPT images used last)."""

        def encode() -> Any:
            encoded = self.segmenter.encode_image(self.sources[label])
            self.encode_count += 1
            return encoded

        return remembered(self._encoded, label, encode, IMAGES_KEPT)

    def prediction(self, label: str, prompt: str) -> Any:
        """Probabilities and attention of (image, prompt), decoded on first use (threshold applied later; kept for
        the PREDICTIONS_KEPT pairs used last)."""

        def decode() -> Any:
            prediction = self.segmenter.predict_encoded(self.encoded(label), prompt, return_attention=True)
            self.decode_count += 1
            return prediction

        return remembered(self._predictions, (label, prompt), decode, PREDICTIONS_KEPT)

    def update(self, image: str | None = None, prompt: str | None = None, threshold: float | None = None) -> dict:
        """Show (image, prompt, threshold), each defaulting to the widgets' values; returns the statistics."""
        label = image if image is not None else self.image.value
        text = (prompt if prompt is not None else self.prompt.value).strip()
        t = float(threshold if threshold is not None else self.threshold.value)
        if not text:
            self.stats.value = "type a prompt, e.g. 'segment crack' or 'segment taping area'"
            self._show_meaning(None)
            return {}
        try:
            pred = self.prediction(label, text)
        except (ValueError, OSError) as exc:
            self.stats.value = f"error: {exc}"
            self._show_meaning(None)
            return {}
        meaning = pred.meaning
        self._show_meaning(meaning)
        rgb = self.encoded(label).rgb
        mask = pred.prob > t  # (H, W)

        self.mask_view.value = png_bytes(mask.astype(np.uint8) * 255, self.max_side)
        self.overlay_view.value = png_bytes(overlay(rgb, mask), self.max_side)
        if pred.attention is not None:
            self.attention_view.value = png_bytes(attention_heatmap(rgb, word_attention(pred.attention, pred.tokens)), self.max_side)
        fg = int(mask.sum())
        measured_as = meaning.cls if meaning is not None and meaning.known else "crack"  # crack's rules for other prompts
        defects = measure_mask(mask, measured_as)
        stats = {"image": label, "prompt": text, "threshold": t, "foreground_pixels": fg,
                 "meaning": None if meaning is None else meaning.cls,
                 "meaning_probs": {} if meaning is None else dict(meaning.probs),
                 "foreground_fraction": fg / mask.size, "max_prob": float(pred.prob.max()),
                 "height": int(mask.shape[0]), "width": int(mask.shape[1]), "defects": len(defects),
                 "longest_px": max((d.length_px for d in defects), default=0.0),
                 "widest_px": max((d.max_width_px for d in defects), default=0.0)}
        measured = (f"{len(defects)} defect{'s' if len(defects) > 1 else ''}, longest {stats['longest_px']:.0f} px, widest {stats['widest_px']:.1f} px"
                    if defects else "no defects")
        self.stats.value = (
            f"prompt '{text}' | threshold {t:.2f} | foreground {fg:,} px ({stats['foreground_fraction']:.2%}) | "
            f"{measured} | max prob {stats['max_prob']:.3f} | image {stats['width']}x{stats['height']}"
        )
        return stats

    def _show_meaning(self, meaning: Any) -> None:
        """Show what the prompt is taken to mean above the mask, or nothing (None)."""
        self.shown_meaning = meaning
        self.meaning.value = "" if meaning is None else meaning_html(meaning)

    def snapshot(self, path: str | Path, credit: bool = True) -> Path:
        """Save the current view (overlay, mask, attention, statistics) as one PNG."""
        fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
        for ax, view, title in zip(axes, (self.overlay_view, self.mask_view, self.attention_view),
                                   ("overlay (mask in red)", "mask", "attention to the prompt's words")):
            if view.value:
                ax.imshow(Image.open(io.BytesIO(view.value)), cmap="gray")
            ax.set_title(title)
            ax.axis("off")
        shown = "" if self.shown_meaning is None else "\n" + meaning_line(self.shown_meaning)
        fig.suptitle(self.stats.value + shown, fontsize=9)
        fig.tight_layout()
        save_figure(fig, path, credit)
        plt.close(fig)
        return Path(path)


def build_playground(segmenter: Any, image_paths: Mapping[str, str | Path] | Sequence[str | Path],
                     prompts: Sequence[str] | None = None, prompt: str | None = None, threshold: float | None = None,
                     max_side: int = 384) -> Any:
    """The playground's root ipywidgets.VBox (class "play-ui"); its `.playground` holds the state and `update`."""
    return Playground(segmenter, image_paths, prompts, prompt, threshold, max_side).ui
