"""Reading images and masks robustly, and writing files atomically."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(ValueError):
    """An image or mask file that cannot be read; the message names the file."""


def is_image_file(path: Path) -> bool:
    """True if the path has an image extension we read."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _open(path: Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such image file")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: cannot read image ({exc}); is the file corrupt or truncated?") from exc
    return img


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert a PIL image of any mode (L, LA, P, RGBA, I;16, I, F, CMYK) to uint8 RGB (H, W, 3)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def load_image(path: str | Path, upright: bool = False) -> np.ndarray:
    """Load an image file as uint8 RGB (H, W, 3); grayscale, RGBA and 16-bit inputs are converted.

    upright: turn the pixels as the file's EXIF orientation says (phone photos are often stored rotated).
    Datasets keep the stored order, because their masks and labels index the stored pixels.
    """
    img = _open(Path(path))
    return to_rgb_array(ImageOps.exif_transpose(img) if upright else img)


def load_mask(path: str | Path) -> np.ndarray:
    """Load a mask file as bool (H, W): any non-zero pixel of the first channel is foreground."""
    img = _open(Path(path))
    arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[..., 0]
    return arr > 0


def load_mask_values(path: str | Path) -> np.ndarray:
    """A mask file's raw values (H, W) (the first channel of a colour file), for checks stricter than load_mask's."""
    img = _open(Path(path))
    arr = np.asarray(img.convert("L") if img.mode in ("P", "PA", "1") else img)
    return arr[..., 0] if arr.ndim == 3 else arr


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file without decoding its pixels."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageReadError(f"{path}: cannot read image header ({exc})") from exc


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp makes owner-only files; outputs are ordinary files
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def save_mask(mask: np.ndarray, path: str | Path) -> None:
    """Write a bool/0-1/0-255 mask as a single-channel 0/255 PNG, atomically (zlib level 1, as save_rgb: a
    two-valued image compresses nearly as well, in half the time)."""
    arr = (np.asarray(mask) > 0).astype(np.uint8) * 255
    with atomic_path(path) as tmp:
        tmp.write_bytes(encode_png(arr))


def save_rgb(image: np.ndarray, path: str | Path, quality: int = 95, full_chroma: bool = False) -> None:
    """Write a uint8 RGB array as PNG or JPEG (by extension), atomically.

    PNGs are written by encode_png (zlib level 1). JPEGs at `quality`; `full_chroma` keeps colour at full
    resolution (4:4:4) instead of halving it as cameras do (4:2:0), so thin coloured marks keep their edges.
    """
    arr = np.asarray(image, dtype=np.uint8)
    with atomic_path(path) as tmp:
        if Path(path).suffix.lower() in (".jpg", ".jpeg"):
            Image.fromarray(arr).save(tmp, format="JPEG", quality=quality, subsampling=0 if full_chroma else -1)
        else:
            tmp.write_bytes(encode_png(arr))


def encode_png(image: np.ndarray) -> bytes:
    """A uint8 (H, W) or (H, W, 3) RGB array as lossless PNG bytes, zlib level 1.

    A photo compresses little better at the default level 6, which takes 3x as long, and OpenCV's encoder takes
    about 60% of Pillow's time for the same bytes: on a CPU that time competes with the model's.
    """
    arr = np.asarray(image, dtype=np.uint8)
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"a PNG is written from an (H, W) or (H, W, 3) array, got shape {arr.shape}")
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)  # OpenCV writes BGR order
    ok, buffer = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"could not encode an image of shape {arr.shape} as PNG")
    return buffer.tobytes()


def save_json(data: Any, path: str | Path, indent: int = 2) -> Path:
    """Write data as JSON (values JSON lacks, such as paths, as strings), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent, default=str) + "\n")
    return Path(path)


def file_hash(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (sha256 names weight files in checkpoints; the feature cache keys images by sha1)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
