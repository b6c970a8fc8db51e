"""Pixels drawn onto photos: overlays, outlines, attention at a photo's size (textseg.drawing)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import flat_image, square_mask
from textseg import drawing


def test_overlay_is_red_only_where_masked() -> None:
    out = drawing.overlay(flat_image(), square_mask(), alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
    assert tuple(out[10, 15]) == (178, 50, 50)  # 0.5 * 100 + 0.5 * (255, 0, 0), rounded
    assert tuple(out[0, 0]) == (100, 100, 100)
    assert (out[~square_mask()] == 100).all()
    assert tuple(drawing.overlay(flat_image(), square_mask(), color=(0, 255, 0), alpha=1.0)[10, 15]) == (0, 255, 0)


def test_overlay_leaves_its_input_alone_and_takes_views() -> None:
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    before = image.copy()
    flipped = image[:, ::-1]  # a view with negative strides
    out = drawing.overlay(flipped, square_mask())
    assert (image == before).all()
    expected = np.round(0.5 * flipped.astype(np.float32) + 0.5 * np.array([255, 0, 0], np.float32)).astype(np.uint8)
    assert (out[square_mask()] == expected[square_mask()]).all() and (out[~square_mask()] == flipped[~square_mask()]).all()


def test_overlay_rejects_mismatchedsquare_mask() -> None:
    with pytest.raises(ValueError, match="does not match"):
        drawing.overlay(flat_image(), np.zeros((5, 5), bool))
    with pytest.raises(ValueError, match="RGB"):
        drawing.overlay(np.zeros((20, 30), np.uint8), square_mask())


def test_mask_outline_is_the_border_ring() -> None:
    ring = drawing.mask_outline(square_mask())
    assert ring.sum() == 2 * 10 + 2 * 8  # perimeter of a 10x10 square
    assert ring[5, 10] and ring[14, 19] and not ring[10, 15] and not ring[0, 0]
    assert drawing.mask_outline(square_mask(), width=2).sum() == 36 + 2 * 8 + 2 * 6
    full = np.ones((4, 4), bool)
    assert drawing.mask_outline(full).sum() == 12  # touches the image border
    drawn = drawing.draw_outline(flat_image(), square_mask(), color=(255, 255, 0))
    assert tuple(drawn[5, 12]) == (255, 255, 0) and tuple(drawn[10, 15]) == (100, 100, 100)


def test_upsample_attention_shapes_and_values() -> None:
    flat = np.arange(196, dtype=np.float32)
    up = drawing.upsample_attention(flat, (50, 80))
    assert up.shape == (50, 80) and up.dtype == np.float32
    assert up[0, 0] < up[-1, -1]  # row-major 14x14 grid: bottom-right is largest
    const = drawing.upsample_attention(np.full((14, 14), 0.25), (33, 21))
    assert np.allclose(const, 0.25)
    with pytest.raises(ValueError, match="square"):
        drawing.upsample_attention(np.zeros(10), (5, 5))


def test_no_box_is_drawn_across_a_label() -> None:
    image = np.full((200, 300, 3), 120, np.uint8)
    mask = np.zeros((200, 300), bool)
    first = ((40, 60, 120, 100), "#1  L 80 px  W 3.0 px")
    # The second defect's box runs right through where the first one's label goes (just above its box).
    second = ((10, 45, 290, 180), "#2")
    alone = drawing.labelled_overlay(image, mask, [first])
    both = drawing.labelled_overlay(image, mask, [first, second])
    label = np.argwhere((alone == (0, 0, 0)).all(-1))  # the first label's black background
    (y0, x0), (y1, x1) = label.min(0), label.max(0)
    assert y1 > y0 and x1 > x0
    assert np.array_equal(alone[y0 : y1 + 1, x0 : x1 + 1], both[y0 : y1 + 1, x0 : x1 + 1])
