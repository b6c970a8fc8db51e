"""Where the cross-attention puts its weight: each prompt token's attention on defect cells against other cells.

The decoder's queries are a grid of image cells (14x14 ViT patches, or the pixel encoder's 1/16 features) and its
keys the prompt's tokens; each cell's weights over the tokens sum to 1. A token the model reads for the defect gets
more weight on the cells that hold the defect than on the rest of the image.
"""

from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np

from textseg.data.datasets import Sample, load_target
from textseg.data.images import load_image
from textseg.model.encoders import word_indices
from textseg.progress import progress_bar
from textseg.prompts import canonical_prompt
from textseg.drawing import grid_side

DEFECT_CELL_FRACTION: float = 0.1
"""A grid cell counts as a defect cell when at least this share of its pixels is defect in the target mask."""


def defect_cells(mask: np.ndarray, cells: int) -> np.ndarray:
    """(H, W) bool mask -> (cells,) bool over a square grid of `cells` cells (row-major, as the queries are)."""
    side = grid_side(cells)
    share = cv2.resize(np.asarray(mask, np.float32), (side, side), interpolation=cv2.INTER_AREA)  # defect share per cell
    return (share >= DEFECT_CELL_FRACTION).reshape(-1)


def token_contrast(attention: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean weight per head and token on defect cells and on the other cells: attention (heads, N, T), cells (N,) bool
    -> two (heads, T) arrays; None when the image has no cell of one kind."""
    attention = np.asarray(attention, np.float64)
    if attention.ndim != 3 or attention.shape[1] != cells.size:
        raise ValueError(f"attention {attention.shape} does not match {cells.size} cells")
    if cells.all() or not cells.any():
        return None
    return attention[:, cells].mean(axis=1), attention[:, ~cells].mean(axis=1)


def attention_contrast(segmenter: Any, samples: Sequence[Sample], progress: bool = False,
                       prompt: str | None = None) -> dict[str, dict[str, Any]]:
    """For each class among `samples` (its canonical prompt, or `prompt` for every image): per token, the head-mean
    weight on defect cells and on other cells, averaged over the images with both kinds of cell.

    Returns {class: {"prompt", "tokens", "images", "defect" (heads, T), "other" (heads, T)}}.
    """
    sums: dict[str, dict[str, Any]] = {}
    for sample in progress_bar(samples, desc="attention", unit="image", disable=not progress):
        target = load_target(sample)
        if not target.any():
            continue
        asked = prompt or canonical_prompt(sample.cls)
        pred = segmenter.predict([load_image(sample.image)], asked, return_attention=True)[0]
        n_tokens = len(pred.tokens)
        contrast = token_contrast(pred.attention[:, :, :n_tokens], defect_cells(target, pred.attention.shape[1]))
        if contrast is None:
            continue
        on, off = contrast
        entry = sums.setdefault(sample.cls, {"prompt": asked, "tokens": pred.tokens, "images": 0, "defect": 0.0, "other": 0.0})
        entry["images"] += 1
        entry["defect"] = entry["defect"] + on
        entry["other"] = entry["other"] + off
    for entry in sums.values():
        entry["defect"] = entry["defect"] / entry["images"]
        entry["other"] = entry["other"] / entry["images"]
    return sums


def contrast_table(stats: dict[str, dict[str, Any]]) -> str:
    """attention_contrast as markdown: per class and token, head-mean weight on defect and other cells, and the head
    with the largest defect-minus-other difference."""
    lines = ["| class (images) | token | weight on defect cells | on other cells | most defect-favouring head (defect / other) |",
             "|---|---|---:|---:|---|"]
    for cls, s in stats.items():
        for t, token in enumerate(s["tokens"]):
            head = int(np.argmax(s["defect"][:, t] - s["other"][:, t]))
            lines.append(f"| {cls} ({s['images']}) | {token} | {s['defect'][:, t].mean():.3f} | {s['other'][:, t].mean():.3f} "
                         f"| {head} ({s['defect'][head, t]:.3f} / {s['other'][head, t]:.3f}) |")
    return "\n".join(lines)


def defect_head(entry: dict[str, Any]) -> tuple[int, int]:
    """(head, token index) of one class's attention_contrast entry where a prompt word (not the start or end marker)
    gets the most more weight on defect cells than on other cells."""
    gain = entry["defect"] - entry["other"]  # (heads, T)
    words = word_indices(entry["tokens"])
    if not words:
        raise ValueError(f"prompt {entry['prompt']!r} has no word tokens")
    head, word = np.unravel_index(np.argmax(gain[:, words]), (gain.shape[0], len(words)))
    return int(head), words[int(word)]


def defect_word(entry: dict[str, Any] | None) -> str | None:
    """The prompt token (not a start or end marker) whose head-mean weight gains most on defect cells over the other
    cells, in one class's attention_contrast entry; None without an entry."""
    if entry is None:
        return None
    gain = (entry["defect"] - entry["other"]).mean(axis=0)  # (T,)
    words = word_indices(entry["tokens"]) or list(range(len(entry["tokens"])))
    return entry["tokens"][max(words, key=lambda t: gain[t])]
