"""Pictures: mask overlays and outlines, image grids, attention heat maps, training and evaluation plots.

Array helpers (`overlay`, `draw_outline`, `mask_outline`, `upsample_attention`) return uint8/float arrays;
plotting helpers return a matplotlib Figure and, given `path`, also save it through `save_figure`, the one
saver every figure of the package goes through (atomically, by extension).
Figures that show real photos take `credit=True` to print the datasets' CC BY 4.0 attribution.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont
from matplotlib.figure import Figure
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np

from textseg.data.images import atomic_path, load_image
from textseg.engine.runs import metrics_path, read_history

logger = logging.getLogger(__name__)

CREDIT = "Photos: Roboflow Universe cracks / Drywall-Join-Detect, CC BY 4.0"
"""Attribution printed under figures that show the real sample's photos."""

MASK_COLOR: tuple[int, int, int] = (255, 0, 0)
OUTLINE_COLOR: tuple[int, int, int] = (255, 255, 0)
CLASS_COLORS: dict[str, str] = {"crack": "tab:red", "taping": "tab:blue"}


# ----------------------------------------------------------------------------------------- arrays


def _check_pair(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate an RGB uint8 image and a same-size 2-D mask."""
    image = np.asarray(image)
    mask = np.asarray(mask).astype(bool)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape[:2]}")
    return image.astype(np.uint8, copy=False), mask


def overlay(
    image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = MASK_COLOR, alpha: float = 0.5
) -> np.ndarray:
    """The image with `color` blended in at `alpha` where the mask is set; uint8 (H, W, 3)."""
    image, mask = _check_pair(image, mask)
    out = np.array(image, order="C")
    pixels = out.reshape(-1, 3)
    where = np.flatnonzero(mask)  # masks are sparse: index once, then blend only those pixels
    blended = (1.0 - alpha) * pixels[where].astype(np.float32) + alpha * np.asarray(color, np.float32)
    pixels[where] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return out


def mask_outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Bool (H, W): foreground pixels within `width` pixels of the background (or the image border)."""
    mask = np.asarray(mask).astype(bool)
    inner = mask.copy()
    for _ in range(max(1, width)):
        padded = np.pad(inner, 1, mode="constant", constant_values=False)
        inner = (
            inner & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        )  # 4-neighbour erosion
    return mask & ~inner


def draw_outline(
    image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = OUTLINE_COLOR, width: int | None = None
) -> np.ndarray:
    """The image with the mask's outline drawn in `color`; uint8 (H, W, 3).

    width None scales the line with the image: 1 px per 150 px of its shorter side (at least 1).
    """
    image, mask = _check_pair(image, mask)
    if width is None:
        width = max(1, min(image.shape[:2]) // 150)
    out = image.copy()
    out[mask_outline(mask, width)] = color
    return out


def grid_side(cells: int) -> int:
    """Side of the square grid of `cells` attention cells (196 -> 14); ValueError when they make no square."""
    side = int(round(np.sqrt(cells)))
    if side * side != cells:
        raise ValueError(f"{cells} attention cells do not make a square grid")
    return side


def upsample_attention(attention: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (196,) or (14, 14) attention map resized bilinearly to `size` = (H, W); float32."""
    attn = np.asarray(attention, dtype=np.float32)
    if attn.ndim == 1:
        side = grid_side(attn.size)
        attn = attn.reshape(side, side)  # (14, 14)
    if attn.ndim != 2:
        raise ValueError(f"attention must be (N,) or (h, w), got shape {attn.shape}")
    height, width = size
    return np.asarray(Image.fromarray(attn, mode="F").resize((width, height), Image.BILINEAR), np.float32)


# ---------------------------------------------------------------------------------------- figures


def save_figure(fig: Figure, path: str | Path | None = None, credit: bool | str | None = None, dpi: int = 120) -> Figure:
    """The one figure saver: add the credit footnote (figures of real photos), save to `path` if given (atomically,
    format by extension), and return the figure."""
    if credit:
        text = CREDIT if credit is True else str(credit)
        fig.text(0.5, 0.002, text, ha="center", va="bottom", fontsize=7, color="0.35")
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=Path(path).suffix.lstrip(".").lower() or "png")
        logger.info("wrote %s", path)
    return fig


def _as_image(item: np.ndarray | str | Path) -> np.ndarray:
    """An RGB uint8 array from an array or an image file."""
    if isinstance(item, (str, Path)):

        return load_image(item)
    return np.asarray(item)


def image_grid(
    images: Sequence[np.ndarray | str | Path],
    masks: Sequence[np.ndarray | None] | None = None,
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    mode: str = "outline",
    color: tuple[int, int, int] | None = None,
    suptitle: str | None = None,
    credit: bool | str | None = None,
    path: str | Path | None = None,
    tile_size: float = 3.0,
) -> Figure:
    """A grid of images, each with its mask drawn as an outline (`mode="outline"`) or a red overlay."""
    if masks is not None and len(masks) != len(images):
        raise ValueError(f"{len(images)} images but {len(masks)} masks")
    if mode not in ("outline", "overlay"):
        raise ValueError(f"mode must be 'outline' or 'overlay', got {mode!r}")
    n = max(1, len(images))
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(tile_size * ncols, tile_size * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        img = _as_image(images[i])
        mask = None if masks is None else masks[i]
        if mask is not None and mode == "outline":
            img = draw_outline(img, mask, color or OUTLINE_COLOR)
        elif mask is not None:
            img = overlay(img, mask, color or MASK_COLOR)
        ax.imshow(img)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight() if suptitle else 1))  # room for the suptitle
    return save_figure(fig, path, credit)


def prediction_figure(
    image: np.ndarray,
    prob: np.ndarray,
    mask: np.ndarray,
    target: np.ndarray | None = None,
    title: str | None = None,
    credit: bool | str | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Image, probability map (with colour bar) and predicted mask in red (ground-truth outline in yellow)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    axes[0].imshow(image)
    axes[0].set_title("image")
    im = axes[1].imshow(prob, cmap="magma", vmin=0.0, vmax=1.0)
    axes[1].set_title("probability")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04, label="P(foreground)")
    shown = overlay(image, mask)
    if target is not None:
        shown = draw_outline(shown, target, OUTLINE_COLOR)
    axes[2].imshow(shown)
    axes[2].set_title("mask (red)" + (" vs truth (yellow)" if target is not None else ""))
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, credit)


def attention_figure(
    image: np.ndarray,
    attention: np.ndarray,
    tokens: Sequence[str],
    heads: str | Sequence[int] = "mean",
    token_indices: Sequence[int] | None = None,
    title: str | None = None,
    credit: bool | str | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Attention (heads, 196, 77) from visual tokens to prompt tokens: one row per token, one column per head.

    `heads` is "mean" (the head average only), "all" (every head, then the mean) or a list of head
    indices, where "mean" may stand for the average. All panels share one colour scale, so tokens and heads can be
    compared directly.
    """
    attention = np.asarray(attention, dtype=np.float32)
    if attention.ndim != 3:
        raise ValueError(f"attention must be (heads, 196, tokens), got shape {attention.shape}")
    rows = list(token_indices) if token_indices is not None else list(range(len(tokens)))
    if not rows:
        raise ValueError("no tokens to show")
    if heads == "mean":
        cols = [("mean of heads", attention.mean(axis=0))]
    elif heads == "all":
        cols = [(f"head {h}", attention[h]) for h in range(attention.shape[0])]
        cols.append(("mean of heads", attention.mean(axis=0)))
    else:
        cols = [("mean of heads", attention.mean(axis=0)) if h == "mean" else (f"head {h}", attention[h]) for h in heads]
    maps = [[upsample_attention(attn[:, t], image.shape[:2]) for _, attn in cols] for t in rows]
    vmin, vmax = min(m.min() for r in maps for m in r), max(m.max() for r in maps for m in r)
    fig, axes = plt.subplots(
        len(rows), len(cols), figsize=(2.2 * len(cols) + 1.2, 2.2 * len(rows) + 0.8), squeeze=False, layout="constrained"
    )
    for r, t in enumerate(rows):
        for c, (col_name, _) in enumerate(cols):
            ax = axes[r, c]
            ax.imshow(image)
            art = ax.imshow(maps[r][c], cmap="jet", alpha=0.5, vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(col_name, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"token {tokens[t]!r}", fontsize=10)
    fig.colorbar(art, ax=axes, shrink=0.8, label="attention weight (visual token -> text token)")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, credit)


def _flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested dict -> {"a/b": number} keeping only numbers."""
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def read_metrics(run: str | Path) -> list[dict[str, float]]:
    """Rows of RUN/metrics.jsonl (or a given .jsonl file), nested keys flattened as "a/b"."""
    path = metrics_path(run)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics file; is this a training run directory?")
    return [_flatten(m) for m in read_history(path)]


def plot_training_curves(
    run: str | Path | Sequence[Mapping[str, Any]], path: str | Path | None = None, title: str | None = None
) -> Figure:
    """Loss, IoU/Dice and negative-prompt false positives per epoch from RUN/metrics.jsonl (or its rows)."""
    rows = read_metrics(run) if isinstance(run, (str, Path)) else [_flatten(r) for r in run]
    if not rows:
        raise ValueError(f"{run}: no epochs recorded yet")
    keys = sorted({k for r in rows for k in r} - {"epoch", "step", "time", "seconds", "elapsed"})
    panels = {
        "loss": [k for k in keys if "loss" in k],
        "IoU / Dice": [k for k in keys if ("iou" in k or "dice" in k) and "loss" not in k],
        "negative-prompt false positives": [k for k in keys if "neg" in k or "fp" in k],
    }
    panels = {name: ks for name, ks in panels.items() if ks}
    if not panels:
        raise ValueError(f"{run}: no loss/iou/negative keys among {keys}")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False)
    for ax, (name, ks) in zip(axes[0], panels.items()):
        for key in ks:
            xs = [r.get("epoch", i + 1) for i, r in enumerate(rows) if key in r]
            ys = [r[key] for r in rows if key in r]
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if name != "loss":
            ax.set_ylim(-0.02, 1.02)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_threshold_sweep(
    report: Mapping[str, Any], path: str | Path | None = None, metric: str = "iou", title: str | None = None
) -> Figure:
    """`metric` per class and the negative-prompt false-positive rate against the threshold (evaluate's report)."""
    sweep = report["threshold_sweep"]
    thresholds = sweep["thresholds"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for cls, values in sweep["classes"].items():
        color = CLASS_COLORS.get(cls)
        axes[0].plot(thresholds, values[metric], marker="o", color=color, label=cls)
        best = report["classes"][cls].get("best_threshold")
        if best is not None:
            axes[0].axvline(best, color=color, linestyle="--", alpha=0.6, label=f"{cls} best = {best:g}")
        axes[1].plot(thresholds, values["negative_fp_rate"], marker="o", color=color, label=f"{cls} images")
    axes[0].set_ylabel(metric)
    axes[0].set_title(f"{metric} vs threshold (canonical prompt)")
    axes[1].set_ylabel("fraction of images with > 1% predicted")
    axes[1].set_title("negative prompt (other class) false positives")
    for ax in axes:
        ax.set_xlabel("threshold")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or f"threshold sweep on {report.get('split', '?')}")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_run_comparison(
    reports: Mapping[str, Mapping[str, Any]],
    metrics: Sequence[str] = ("iou", "dice"),
    path: str | Path | None = None,
    title: str | None = None,
) -> Figure:
    """Grouped bars: for each run, `metrics` per class plus the negative-prompt false-positive rate."""
    if not reports:
        raise ValueError("no reports to compare")
    names = list(reports)
    classes = sorted({c for r in reports.values() for c in r["classes"]})
    groups = [(cls, m) for cls in classes for m in metrics] + [("all", "negative_fp_rate")]
    width = 0.8 / len(names)
    x = np.arange(len(groups))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(groups) + 2), 4.2))
    for i, name in enumerate(names):
        rep = reports[name]
        values = [
            rep["negative_fp_rate"] if cls == "all" else rep["classes"].get(cls, {}).get(m, np.nan)
            for cls, m in groups
        ]
        bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, [f"{cls}\n{m}" if cls != "all" else "negative\nFP rate" for cls, m in groups])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score (higher is better, except negative FP rate)")
    ax.set_title(title or "run comparison")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------- inspection


def shrink(image: np.ndarray, max_side: int, nearest: bool = False) -> tuple[np.ndarray, float]:
    """The image (or mask) scaled so its longer side is at most max_side, and the scale used (<= 1)."""
    arr = np.asarray(image)
    scale = min(1.0, max_side / max(arr.shape[:2]))
    if scale == 1.0:
        return arr, 1.0
    size = (max(1, round(arr.shape[1] * scale)), max(1, round(arr.shape[0] * scale)))
    if arr.dtype == bool:
        return np.asarray(Image.fromarray(arr.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 0, scale
    return np.asarray(Image.fromarray(arr).resize(size, Image.NEAREST if nearest else Image.BILINEAR)), scale


def labelled_overlay(
    image: np.ndarray, mask: np.ndarray, labels: Sequence[tuple[tuple[int, int, int, int], str]], max_side: int = 2048
) -> np.ndarray:
    """The photo with the mask in red, every defect's box outlined and numbered with its label text; uint8 RGB,
    shrunk to at most max_side (a 12 MP overlay at full size is mostly file size, not information).

    labels: ((x0, y0, x1, y1) in the photo's pixels, text) per defect.
    """
    image, mask = _check_pair(image, mask)
    small, scale = shrink(image, max_side)
    small_mask, _ = shrink(mask, max_side)
    shown = Image.fromarray(draw_outline(overlay(small, small_mask), small_mask, width=1))
    draw = ImageDraw.Draw(shown)
    font_px = max(11, min(shown.size) // 45)
    font = ImageFont.load_default(size=font_px)
    placed: list[tuple[float, float, float, float]] = []
    for (x0, y0, x1, y1), text in labels:
        box = [x0 * scale - 2, y0 * scale - 2, x1 * scale + 1, y1 * scale + 1]
        draw.rectangle(box, outline=OUTLINE_COLOR, width=max(1, font_px // 10))
        rect = _free_spot(draw, font, text, box, shown.size, placed)
        placed.append(rect)
        draw.rectangle(rect, fill=(0, 0, 0))
        draw.text((rect[0] + 2, rect[1] + 1), text, fill=OUTLINE_COLOR, font=font)
    return np.asarray(shown)


def _free_spot(draw: ImageDraw.ImageDraw, font: ImageFont.FreeTypeFont, text: str, box: Sequence[float],
               size: tuple[int, int], placed: Sequence[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    """A rectangle for a label next to its box (above, else below, else inside), clear of the labels already placed."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left + 4, bottom - top + 4
    x = min(max(0.0, box[0]), max(0.0, size[0] - w))
    starts = [y for y in (box[1] - h - 1, box[3] + 1, box[1] + 1) if 0 <= y <= size[1] - h] or [0.0]
    for y0 in starts:
        for k in (0, *(step for i in range(1, 40) for step in (i, -i))):  # nearest free row first, down or up
            rect = (x, y0 + k * h, x + w, y0 + (k + 1) * h)
            if rect[1] < 0 or rect[3] > size[1]:
                continue
            if not any(rect[0] < p[2] and p[0] < rect[2] and rect[1] < p[3] and p[1] < rect[3] for p in placed):
                return rect
    return (x, starts[0], x + w, starts[0] + h)  # no free row near the box: overlap rather than drop the label


def inspection_summary_figure(
    widths: Sequence[float], lengths_per_photo: Mapping[str, float], unit: str = "px",
    path: str | Path | None = None, bounds: Sequence[tuple[str, float]] = (),
) -> Figure:
    """Two panels over a folder of photos: the histogram of defect widths (with width-class bounds when given)
    and the total defect length per photo."""
    fig, (ax_w, ax_l) = plt.subplots(1, 2, figsize=(11, 4))
    if len(widths):
        ax_w.hist(widths, bins=min(30, max(5, len(widths) // 2)), color="tab:red", alpha=0.8)
        for name, bound in bounds:
            if np.isfinite(bound) and bound <= max(widths) * 1.5:
                ax_w.axvline(bound, color="0.3", ls="--", lw=1)
                ax_w.text(bound, ax_w.get_ylim()[1] * 0.97, f"{name} < {bound:g} ", fontsize=7, va="top", ha="right", rotation=90)
    else:
        ax_w.text(0.5, 0.5, "no defects found", ha="center", va="center", transform=ax_w.transAxes)
    ax_w.set_xlabel(f"maximum width per defect ({unit})")
    ax_w.set_ylabel("defects")
    ax_w.set_title(f"{len(widths)} defects")
    ax_w.yaxis.set_major_locator(MaxNLocator(integer=True))
    names = list(lengths_per_photo)
    ax_l.barh(range(len(names)), [lengths_per_photo[n] for n in names], color="tab:red", alpha=0.8)
    ax_l.set_yticks(range(len(names)), [n if len(n) <= 28 else n[:12] + "..." + n[-12:] for n in names], fontsize=7)
    ax_l.invert_yaxis()
    ax_l.set_xlabel(f"total defect length ({unit})")
    ax_l.set_title(f"length per photo ({len(names)} photos)")
    for ax in (ax_w, ax_l):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
