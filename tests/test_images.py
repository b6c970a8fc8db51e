"""Image and mask reading across modes, and atomic writes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from textseg.data.images import ImageReadError, atomic_path, encode_png, load_image, load_mask, save_mask, save_rgb


def test_grayscale_rgba_and_16bit_load_as_uint8_rgb(tmp_path: Path) -> None:
    gray = np.full((5, 7), 100, np.uint8)
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0  # transparent pixel becomes white
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    Image.fromarray(np.full((5, 7), 65535, np.uint16)).save(tmp_path / "h.png")
    for name in ("g.png", "a.png", "h.png"):
        img = load_image(tmp_path / name)
        assert img.shape == (5, 7, 3) and img.dtype == np.uint8
    assert (load_image(tmp_path / "g.png") == 100).all()
    assert tuple(load_image(tmp_path / "a.png")[0, 0]) == (255, 255, 255)
    assert tuple(load_image(tmp_path / "a.png")[1, 1]) == (200, 0, 0)
    assert (load_image(tmp_path / "h.png") == 255).all()


def test_corrupt_and_missing_images_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(ImageReadError, match="bad.jpg"):
        load_image(bad)
    with pytest.raises(ImageReadError, match="missing.png"):
        load_image(tmp_path / "missing.png")


def test_truncated_jpeg_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ImageReadError, match="t.jpg"):
        load_image(path)


def test_mask_round_trip_is_0_255_single_channel(tmp_path: Path) -> None:
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:5] = True
    save_mask(mask, tmp_path / "m.png")
    raw = np.asarray(Image.open(tmp_path / "m.png"))
    assert raw.ndim == 2 and set(np.unique(raw)) == {0, 255}
    assert (load_mask(tmp_path / "m.png") == mask).all()


def test_png_writes_are_lossless_in_rgb_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)  # red stays red: OpenCV's BGR order is converted
    save_rgb(rgb, tmp_path / "c.png")
    back = Image.open(tmp_path / "c.png")
    assert back.mode == "RGB" and (np.asarray(back) == rgb).all()
    gray = rng.integers(0, 256, (9, 13), dtype=np.uint8)
    assert (np.asarray(Image.open(io.BytesIO(encode_png(gray)))) == gray).all()
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, 3\)"):
        encode_png(np.zeros((4, 4, 4), np.uint8))


def test_atomic_path_leaves_nothing_when_the_block_fails(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
