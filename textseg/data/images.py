"""Reading images and masks robustly, and writing them atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from textseg.files import atomic_path

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
EXIF_ORIENTATION = 0x0112  # the EXIF tag saying how the stored pixels are turned


class ImageReadError(ValueError):
    """An image or mask file that cannot be read; the message names the file."""


def is_image_file(path: Path) -> bool:
    """True if the path has an image extension we read."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _open(path: Path, load: bool = True) -> Image.Image:
    """The image file opened by Pillow, its pixels decoded unless `load` is False (then only its header is read)."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such image file")
    try:
        img = Image.open(path)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise _read_error(path, exc) from exc
    return _load(img, path) if load else img


def _load(img: Image.Image, path: Path) -> Image.Image:
    """The opened image with its pixels decoded; ImageReadError naming the file for a corrupt or truncated one."""
    try:
        img.load()
    except (OSError, SyntaxError) as exc:
        raise _read_error(path, exc) from exc
    return img


def _read_error(path: Path, reason: object) -> ImageReadError:
    return ImageReadError(f"{path}: cannot read image ({reason}); is the file corrupt or truncated?")


def _decode_jpeg(path: Path) -> np.ndarray:
    """uint8 RGB (H, W, 3) of a colour JPEG through OpenCV's libjpeg-turbo: the same pixels as Pillow's (checked on
    every photo of the datasets) in half the time, because Pillow's copy out of its own image memory costs as
    much as decoding. Truncated or corrupt files fail as in Pillow."""
    pixels = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    if pixels is None:
        raise _read_error(path, "the JPEG data is incomplete or corrupt")
    return pixels


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
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.array(img, dtype=np.uint8)  # a writable copy; PIL's own copies cost as much as this one


def load_image(path: str | Path, upright: bool = False) -> np.ndarray:
    """Load an image file as uint8 RGB (H, W, 3); grayscale, RGBA and 16-bit inputs are converted.

    upright: turn the pixels as the file's EXIF orientation says (phone photos are often stored rotated).
    Datasets keep the stored order, because their masks and labels index the stored pixels.
    """
    path = Path(path)
    img = _open(path, load=False)
    turned = upright and img.getexif().get(EXIF_ORIENTATION, 1) != 1
    if img.format == "JPEG" and img.mode == "RGB" and not turned:  # most photos
        img.close()
        return _decode_jpeg(path)
    img = _load(img, path)
    return to_rgb_array(ImageOps.exif_transpose(img) if turned else img)


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, 3) resized to size (width, height), bilinear with antialiasing: PIL's BILINEAR filter
    (identical pixels at 2x reductions, within one level elsewhere) in torch's uint8 kernel, about 4x faster
    than PIL. Prediction and training both resize through here, so the model sees the same pixels in each."""
    import torch  # here, not at the top: reading and writing images (`textseg extract-masks`) does without it
    import torch.nn.functional as F

    width, height = size
    if rgb.shape[:2] == (height, width):
        return rgb
    rgb = np.require(rgb, requirements=["C", "W"])  # torch shares the memory and warns about read-only arrays
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # (1, 3, H, W) uint8
    out = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).contiguous().numpy()


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


def save_mask(mask: np.ndarray, path: str | Path) -> None:
    """Write a bool/0-1/0-255 mask as a single-channel 0/255 PNG, atomically (encode_png's two-valued setting)."""
    arr = np.asarray(mask)
    arr = (arr if arr.dtype == bool else arr > 0).view(np.uint8) * 255
    with atomic_path(path) as tmp:
        tmp.write_bytes(encode_png(arr, two_valued=True))


def save_mask_with(mask: np.ndarray, path: str | Path, write_picture: Callable[[], None]) -> None:
    """save_mask, then write_picture() (the picture that goes with the mask); if that fails the mask is removed
    too, so a photo gets both files or neither."""
    save_mask(mask, path)
    try:
        write_picture()
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise


def save_rgb(image: np.ndarray, path: str | Path, quality: int = 95, full_chroma: bool = False) -> None:
    """Write a uint8 RGB array as PNG or JPEG (by extension), atomically.

    PNGs are written by encode_png (zlib level 1), JPEGs by encode_jpeg.
    """
    jpeg = Path(path).suffix.lower() in (".jpg", ".jpeg")
    data = encode_jpeg(image, quality, full_chroma) if jpeg else encode_png(image)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def encode_jpeg(image: np.ndarray, quality: int = 95, full_chroma: bool = False) -> bytes:
    """A uint8 (H, W, 3) RGB array as JPEG bytes at `quality`. `full_chroma` keeps colour at full resolution (4:4:4)
    instead of halving it as cameras do (4:2:0), so thin coloured marks keep their edges.

    OpenCV writes the same bytes as Pillow at these settings, without Pillow's copy of the pixels.
    """
    arr = np.asarray(image, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"a JPEG is written from an (H, W, 3) array, got shape {arr.shape}")
    sampling = cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444 if full_chroma else cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420
    return _encode(arr, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling])


def encode_png(image: np.ndarray, two_valued: bool = False) -> bytes:
    """A uint8 (H, W) or (H, W, 3) RGB array as lossless PNG bytes, zlib level 1.

    A photo compresses little better at the default level 6, which takes 3x as long, and OpenCV's encoder takes
    about 60% of Pillow's time for the same bytes: on a CPU that time competes with the model's. `two_valued`
    (a 0/255 mask): no row filters and run-length matching, which write a mask in a quarter of the time as less
    than half the bytes; row filters only help images with gradients.
    """
    arr = np.asarray(image, dtype=np.uint8)
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"a PNG is written from an (H, W) or (H, W, 3) array, got shape {arr.shape}")
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    if two_valued:
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    return _encode(arr, ".png", params)


def _encode(arr: np.ndarray, extension: str, params: list[int]) -> bytes:
    """A uint8 (H, W) or RGB (H, W, 3) array encoded by OpenCV in the format of `extension`."""
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)  # OpenCV writes BGR order
    ok, buffer = cv2.imencode(extension, arr, params)
    if not ok:
        raise ValueError(f"could not encode an image of shape {arr.shape} as {extension.lstrip('.').upper()}")
    return buffer.tobytes()
