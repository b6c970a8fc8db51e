"""Pixels drawn onto photos: mask overlays and outlines, attention maps at a photo's size, labelled inspection
overlays. NumPy and Pillow only, so prediction imports it without matplotlib; the figures are in textseg.viz.
"""

from __future__ import annotations

from typing import Sequence

from PIL import Image, ImageDraw, ImageFont
import numpy as np

MASK_COLOR: tuple[int, int, int] = (255, 0, 0)
OUTLINE_COLOR: tuple[int, int, int] = (255, 255, 0)
MARKER_COLOR: tuple[int, int, int] = (0, 255, 255)


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
    where = np.flatnonzero(mask)  # masks are sparse: blend only those pixels
    blended = np.take(pixels, where, axis=0).astype(np.float32)
    blended *= 1.0 - alpha
    blended += alpha * np.asarray(color, np.float32)
    np.clip(np.round(blended, out=blended), 0, 255, out=blended)
    # Written back as one 3-byte item per pixel: row indexing of (N, 3) costs twice as much.
    rgb_item = np.dtype((np.void, 3))
    pixels.view(rgb_item)[:, 0][where] = np.ascontiguousarray(blended.astype(np.uint8)).view(rgb_item)[:, 0]
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
    image: np.ndarray, mask: np.ndarray, labels: Sequence[tuple[tuple[int, int, int, int], str]], max_side: int = 2048,
    outline: tuple[np.ndarray, str] | None = None,
) -> np.ndarray:
    """The photo with the mask in red, every defect's box outlined and numbered with its label text; uint8 RGB,
    shrunk to at most max_side (a 12 MP overlay at full size is mostly file size, not information).

    labels: ((x0, y0, x1, y1) in the photo's pixels, text) per defect.
    outline: a polygon ((n, 2) photo (x, y)) and its label, drawn in MARKER_COLOR: the marker the scale came from.
    """
    image, mask = _check_pair(image, mask)
    small, scale = shrink(image, max_side)
    small_mask, _ = shrink(mask, max_side)
    shown = Image.fromarray(draw_outline(overlay(small, small_mask), small_mask, width=1))
    draw = ImageDraw.Draw(shown)
    font_px = max(11, min(shown.size) // 45)
    font = ImageFont.load_default(size=font_px)
    # Every outline first, then every label on top: a later defect's box never runs across an earlier label.
    boxes = [[x0 * scale - 2, y0 * scale - 2, x1 * scale + 1, y1 * scale + 1] for (x0, y0, x1, y1), _ in labels]
    for box in boxes:
        draw.rectangle(box, outline=OUTLINE_COLOR, width=max(1, font_px // 10))
    tags = [(box, text, OUTLINE_COLOR) for box, (_, text) in zip(boxes, labels)]
    if outline is not None:
        corners = [(float(x) * scale, float(y) * scale) for x, y in np.asarray(outline[0])]
        draw.polygon(corners, outline=MARKER_COLOR, width=max(2, font_px // 6))
        xs, ys = zip(*corners)
        tags.insert(0, ([min(xs), min(ys), max(xs), max(ys)], outline[1], MARKER_COLOR))
    placed: list[tuple[float, float, float, float]] = []
    for box, text, color in tags:
        rect = _free_spot(draw, font, text, box, shown.size, placed)
        placed.append(rect)
        draw.rectangle(rect, fill=(0, 0, 0))
        draw.text((rect[0] + 2, rect[1] + 1), text, fill=color, font=font)
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
