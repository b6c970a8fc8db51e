"""Image and mask reading across modes, and atomic writes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps, JpegImagePlugin

from textseg.data.images import (EXIF_ORIENTATION, ImageReadError, encode_jpeg, encode_png, load_image, load_mask, resize_rgb,
                                 save_mask, save_mask_with, save_rgb)
from textseg.files import atomic_path

SAMPLE_PHOTOS = sorted((Path(__file__).resolve().parents[1] / "data" / "sample").glob("*/*/images/*.jpg"))


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


def test_real_jpegs_read_as_pillow_decodes_them_upright_or_stored(tmp_path: Path) -> None:
    assert len(SAMPLE_PHOTOS) >= 8
    for path in SAMPLE_PHOTOS:
        expected = np.asarray(Image.open(path).convert("RGB"))
        got = load_image(path, upright=True)
        assert got.dtype == np.uint8 and got.flags.writeable and (got == expected).all(), path
    # A photo stored turned (EXIF orientation 6: turn 90 degrees clockwise to view) reads upright only when asked.
    stored = np.asarray(Image.open(SAMPLE_PHOTOS[0]).convert("RGB"))[:, :480]  # not square, so the turn shows
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    Image.fromarray(stored).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    pillow = Image.open(tmp_path / "turned.jpg")
    assert (load_image(tmp_path / "turned.jpg") == np.asarray(pillow.convert("RGB"))).all()
    upright = load_image(tmp_path / "turned.jpg", upright=True)
    assert upright.shape == (stored.shape[1], stored.shape[0], 3)
    assert (upright == np.asarray(ImageOps.exif_transpose(pillow).convert("RGB"))).all()


def test_resize_rgb_matches_pillows_bilinear_filter() -> None:
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    pillow = np.asarray(Image.fromarray(photo).resize((32, 32), Image.BILINEAR))
    assert (resize_rgb(photo, (32, 32)) == pillow).all()  # a 2x reduction, as 640-px photos to the model: identical
    for shape, size in (((50, 77, 3), (32, 32)), ((20, 30, 3), (45, 60)), ((300, 200, 3), (41, 97))):
        photo = rng.integers(0, 256, shape, dtype=np.uint8)
        out = resize_rgb(photo, size)
        pillow = np.asarray(Image.fromarray(photo).resize(size, Image.BILINEAR))
        assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8
        assert np.abs(out.astype(int) - pillow).max() <= 1 and (out != pillow).mean() < 0.01
    assert resize_rgb(photo, (200, 300)) is photo  # already that size: no copy


def test_mask_round_trip_is_0_255_single_channel(tmp_path: Path) -> None:
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:5] = True
    for given in (mask, mask.astype(np.uint8), mask.astype(np.uint8) * 255, mask.astype(np.float32)):
        save_mask(given, tmp_path / "m.png")
        raw = np.asarray(Image.open(tmp_path / "m.png"))
        assert raw.dtype == np.uint8 and raw.ndim == 2 and set(np.unique(raw)) == {0, 255}
        assert (load_mask(tmp_path / "m.png") == mask).all()


def test_a_mask_and_its_picture_are_written_both_or_neither(tmp_path: Path) -> None:
    mask = np.eye(6, dtype=bool)
    save_mask_with(mask, tmp_path / "m.png", lambda: save_rgb(np.zeros((6, 6, 3), np.uint8), tmp_path / "m.jpg"))
    assert (load_mask(tmp_path / "m.png") == mask).all() and (tmp_path / "m.jpg").is_file()

    def fail() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_mask_with(mask, tmp_path / "n.png", fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jpg", "m.png"]


def test_jpeg_writes_keep_colour_at_full_resolution_when_asked(tmp_path: Path) -> None:
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, ::2] = (255, 0, 0)  # one-pixel red stripes: halved colour would smear them
    for full_chroma, sampling in ((True, 0), (False, 2)):  # Pillow's names: 0 is 4:4:4, 2 is 4:2:0
        save_rgb(rgb, tmp_path / "o.jpg", quality=95, full_chroma=full_chroma)
        back = Image.open(tmp_path / "o.jpg")
        assert back.format == "JPEG" and JpegImagePlugin.get_sampling(back) == sampling
        red = np.asarray(back.convert("RGB"))[:, ::2, 0].astype(int)
        assert (red > 200).all() if full_chroma else (red < 200).any()
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        encode_jpeg(np.zeros((4, 4), np.uint8))


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
