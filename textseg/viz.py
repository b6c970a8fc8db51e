"""Figures: image grids, predictions, attention heat maps, training, evaluation and inspection plots.

Each returns a matplotlib Figure and, given `path`, also saves it through `save_figure`, the one saver every
figure of the package goes through (atomically, by extension). What they draw onto the pixels (mask overlays,
outlines, labelled inspection overlays) is textseg.drawing, which prediction uses without matplotlib.
Figures that show real photos take `credit=True` to print the datasets' CC BY 4.0 attribution.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from matplotlib.figure import Figure
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np

from textseg.data.images import load_image
from textseg.files import atomic_path
from textseg.drawing import MASK_COLOR, OUTLINE_COLOR, draw_outline, overlay, upsample_attention
from textseg.engine.runs import RunDir, read_history

logger = logging.getLogger(__name__)

CREDIT = "Photos: Roboflow Universe cracks / Drywall-Join-Detect, CC BY 4.0"
"""Attribution printed under figures that show the real sample's photos."""

CLASS_COLORS: dict[str, str] = {"crack": "tab:red", "taping": "tab:blue"}


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
    path = Path(run) if Path(run).suffix == ".jsonl" else RunDir(run).metrics
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


def width_profiles_figure(
    profiles: Any, count: int = 4, unit: str = "px", path: str | Path | None = None, credit: bool | str | None = None,
) -> Figure:
    """Grey level across a crack at `count` points spread along its centre line (textseg.measure.visible.Profiles):
    the mask's edges, the wall and valley levels, and the half-depth width the visible width is made of."""
    seen = np.flatnonzero(np.isfinite(profiles.widths))
    fig, axes = plt.subplots(1, count, figsize=(3.2 * count, 3.0), sharey=True, squeeze=False)
    if not seen.size:
        axes[0, 0].text(0.5, 0.5, "no valley seen", ha="center", va="center", transform=axes[0, 0].transAxes)
        return save_figure(fig, path, credit)
    picks = seen[np.linspace(0, seen.size - 1, count).round().astype(int)]
    for ax, i in zip(axes[0], picks):
        x, y = profiles.offsets[i], profiles.values[i]
        ax.plot(x, y, color="0.2", lw=1.2)
        ax.axvspan(-profiles.mask_half[i], profiles.mask_half[i], color="tab:red", alpha=0.12, label="mask")
        ax.axhline(profiles.wall[i], color="tab:blue", lw=0.8, ls="--", label="wall")
        ax.axhline(profiles.floor[i], color="tab:blue", lw=0.8, ls=":", label="valley floor")
        level = (profiles.wall[i] + profiles.floor[i]) / 2
        ax.plot([profiles.left[i], profiles.right[i]], [level, level], color="tab:red", lw=2.5, label="half-depth width")
        ax.set_title(f"visible {profiles.widths[i]:.2f} {unit}, mask {2 * profiles.mask_half[i]:.1f} {unit}", fontsize=9)
        ax.set_xlabel(f"across the crack ({unit})")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("grey level")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return save_figure(fig, path, credit)
