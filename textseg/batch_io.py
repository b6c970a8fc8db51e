"""Batches of image files: expanding folders, reading ahead in a thread while the model works, writing results in
background threads, and naming the outputs (`textseg predict`, `textseg inspect`)."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from textseg.data.images import ImageReadError, is_image_file, load_image, save_mask, save_mask_with, save_rgb
from textseg.drawing import overlay
from textseg.predictor import Prediction, Segmenter, Tiling
from textseg.progress import progress_bar

T = TypeVar("T")
WRITERS = 2  # threads writing (and measuring) while the model works: PNG encoding and OpenCV release the GIL
OUTPUTS: dict[str, str] = {"mask": "_mask.png", "overlay": "_overlay.jpg", "inspect": "_inspect.png"}
"""What each command writes per image, by kind: the mask (lossless PNG, the photo's size), `predict`'s overlay (a
JPEG: written in a tenth of a PNG's time, which on a CPU competes with the model's) and `inspect`'s labelled
overlay."""


def expand_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Image paths, with each directory replaced by the image files it holds (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and is_image_file(q))
            if not found:
                raise FileNotFoundError(f"{p}: directory holds no image files")
            out += found
        else:
            out.append(p)
    return out


def mask_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Mask files: as expand_inputs, but a folder that holds `textseg predict` or `inspect` output gives only its
    masks ({name}_mask.png), not the overlays beside them."""
    out: list[Path] = []
    for p in map(Path, paths):
        found = expand_inputs([p])
        if p.is_dir():
            masks = [f for f in found if f.name.endswith(OUTPUTS["mask"])]
            found = masks or found
        out += found
    return out


def check_output_stems(images: Sequence[Path]) -> list[Path]:
    """The images without repeats; ValueError when two different files would write the same {name}_*.png."""
    stems: dict[str, Path] = {}
    for img in images:
        if img.stem in stems and stems[img.stem] != img:
            raise ValueError(f"{stems[img.stem]} and {img} would both write {img.stem}_*.png; put their outputs in separate --out dirs")
        stems[img.stem] = img
    return list(dict.fromkeys(images))


def output_path(image: Path, out_dir: Path, kind: str) -> Path:
    """DIR/{name}{suffix} of one kind of output (OUTPUTS) for an input image."""
    return Path(out_dir) / f"{Path(image).stem}{OUTPUTS[kind]}"


def write_prediction(
    pred: Prediction, rgb: np.ndarray, image: Path, out_dir: Path, with_overlay: bool = True
) -> tuple[Path, Path | None]:
    """Write the mask PNG and, `with_overlay`, the overlay JPEG, atomically; if the second write fails, the first is
    removed. Returns both paths (None for an overlay not written)."""
    mask_path, overlay_path = output_path(image, out_dir, "mask"), output_path(image, out_dir, "overlay")
    if not with_overlay:
        save_mask(pred.mask, mask_path)
        return mask_path, None
    shown = overlay(rgb, pred.mask)  # drawn first: a bad image leaves no mask behind
    save_mask_with(pred.mask, mask_path, lambda: save_rgb(shown, overlay_path, full_chroma=True))  # 4:4:4: a thin red mask stays sharp
    return mask_path, overlay_path


def predict_files(
    seg: Segmenter, images: Sequence[Path], prompt: str, threshold: float | None, batch_size: int, tiling: Tiling | None,
    failed: list[str], model_view: Callable[[Path, np.ndarray], np.ndarray] | None = None,
) -> Iterator[tuple[Path, np.ndarray, Prediction]]:
    """(path, upright RGB, prediction) per readable image, in batches (one photo at a time with tiling); the
    message of each unreadable image is appended to `failed` and the image skipped. The next batch is read in a
    background thread while the model works on this one (image decoding releases the GIL). `model_view(path, rgb)`,
    run in that thread, gives what the model is shown in place of the photo (the photo itself is yielded)."""
    step = 1 if tiling is not None else batch_size
    starts = range(0, len(images), step)

    def read(paths: Sequence[Path]) -> tuple[list[Path], list[np.ndarray], list[str], list[np.ndarray]]:
        readable, rgbs, errors = read_images(paths)
        return readable, rgbs, errors, [model_view(p, r) for p, r in zip(readable, rgbs)] if model_view else rgbs

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="textseg-read") as reader:
        upcoming = reader.submit(read, images[:step])
        for start in progress_bar(starts, desc="predict", unit="photo" if tiling else "batch", disable=len(images) <= step):
            chunk, rgbs, errors, shown = upcoming.result()
            if start + step < len(images):
                upcoming = reader.submit(read, images[start + step : start + 2 * step])
            failed.extend(errors)
            if not chunk:
                continue
            if tiling is not None:
                preds = seg.predict(shown, prompt, threshold, tiling=tiling)
            else:
                preds = seg.predict_encoded(seg.encode_images(shown, [str(c) for c in chunk]), prompt, threshold)
            for img, rgb, pred in zip(chunk, rgbs, preds):
                pred.source = str(img)
                yield img, rgb, pred


def read_images(paths: Sequence[Path]) -> tuple[list[Path], list[np.ndarray], list[str]]:
    """The readable ones of `paths` with their upright RGB arrays, and the message of each unreadable one."""
    readable, rgbs, errors = [], [], []
    for path in paths:
        try:
            rgbs.append(load_image(path, upright=True))
            readable.append(path)
        except ImageReadError as exc:
            errors.append(str(exc))
    return readable, rgbs, errors


def in_background(work: Callable[..., T], items: Iterable[tuple], workers: int = WRITERS) -> Iterator[T]:
    """work(*item) for each item in `workers` background threads while the caller goes on producing items,
    yielded in input order; at most `workers` items are held at once. An error raises when its item's turn comes,
    after the work already started has finished. `workers` 0 runs each item in the caller's thread."""
    if workers == 0:
        for item in items:
            yield work(*item)
        return
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="textseg-background") as pool:
        for item in items:
            pending.append(pool.submit(work, *item))
            while len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def background_workers(tiling: Tiling | None) -> int:
    """Threads for the per-photo work after prediction: one with tiling, where a photo's full-size probabilities,
    mask and pixels are large and each held photo adds to the peak memory; else WRITERS."""
    return 1 if tiling is not None else WRITERS


def write_predictions(
    results: Iterable[tuple[Path, np.ndarray, Prediction]], out_dir: Path, with_overlay: bool = True, workers: int = WRITERS,
) -> Iterator[tuple[Path, Prediction]]:
    """Write predict_files' results (write_prediction) in the background, yielding (mask path, prediction) in
    input order once written."""

    def write(image: Path, rgb: np.ndarray, pred: Prediction) -> tuple[Path, Prediction]:
        return write_prediction(pred, rgb, image, out_dir, with_overlay)[0], pred

    return in_background(write, results, workers)


def unreadable_error(failed: Sequence[str], total: int) -> ValueError:
    """The one error naming every unreadable image, raised after the readable ones are written."""
    return ValueError(f"{len(failed)} of {total} images could not be read (no files written for them): " + "; ".join(failed))


def format_stats(name: str, stats: dict[str, object]) -> str:
    """One printed line of per-image statistics."""
    return (
        f"{name}: {stats['width']}x{stats['height']}  foreground {stats['foreground_pixels']} px "
        f"({stats['foreground_fraction']:.2%})  unique values {stats['unique_values']}  max prob {stats['max_prob']:.3f}"
    )
