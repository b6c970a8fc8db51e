"""Datasets: layouts per split, pairing images with masks or labels, photo-grouped splits, and the torch Dataset.

A dataset root holds one class and split folders train/, valid/, test/, each in one of three layouts:
"masks" (images/ + masks/, optionally labels/), "yolo" (images/ + labels/*.txt) or "coco" (images and
_annotations.coco.json side by side, optionally masks/ written by `textseg extract-masks`). Samples
without a mask file are rasterised from their labels in memory (load_target).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import torch
from PIL import Image

from textseg import CLASSES, MODEL_SIZE
from textseg.data.augment import IDENTITY, draw_params
from textseg.data.images import image_size, is_image_file, load_image, load_mask, resize_rgb
from textseg.data.labels import COCO_JSON, class_from_keywords, coco_mask, read_coco, read_coco_images, yolo_mask
from textseg.progress import progress_bar
from textseg.prompts import NONE, normalise_class, other_class, sample_prompt

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "valid", "test")
_ROBOFLOW_SUFFIX = re.compile(r"[_-](jpe?g|png|bmp|webp|tiff?)$", re.IGNORECASE)
# Names cameras write. DCF counter: four characters (not all digits), then the four-digit counter.
_COUNTER_NAME = re.compile(r"(?P<prefix>(?=\d{0,3}[A-Za-z_])[A-Za-z0-9_]{4})(?P<number>\d{4})(?!\d)")
# Date-time: optional letters (IMG_, PXL_, VID_), YYYYMMDD, then HHMMSS (phones; milliseconds may follow).
_DATE_TIME_NAME = re.compile(r"(?P<prefix>[A-Za-z]*[_-]?)(?P<date>(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))"
                             r"[_-]?(?P<time>(?:[01]\d|2[0-3])[0-5]\d[0-5]\d)")
# Shots this close are taken as one scene: re-shots of one board come a few frames (IMG_8220, IMG_8222) or seconds
# apart; wider gaps chain whole sessions into groups too big to hold back (benchmarks/audit_results.md).
SEQUENCE_GAP = 3  # camera counter
SEQUENCE_SECONDS = 30  # date-time names


class DatasetError(ValueError):
    """A dataset folder that cannot be used as is; the message lists every offending file."""


@dataclass(frozen=True)
class Sample:
    """One image of one class; mask None means the target is rasterised from label or coco in memory."""

    image: Path
    mask: Path | None
    cls: str | None  # None only where a folder is audited without a class
    split: str
    root: Path
    label: Path | None = None  # YOLO txt
    coco: Path | None = None  # COCO json


# ----------------------------------------------------------------------------- CLI specs

def split_root_spec(spec: str | Path) -> tuple[str | None, Path]:
    """(class, root) of "CLASS=ROOT" (class aliases: cracks, drywall, joint), or of a plain ROOT: the class its folder
    name tells ("cracks" -> crack), else None."""
    text = str(spec)
    if "=" in text:
        name, root = text.split("=", 1)
        return normalise_class(name), Path(root).expanduser()
    root = Path(text).expanduser()
    return class_from_keywords(root.resolve().name), root


def parse_data_specs(specs: Sequence[str] | Mapping[str, str | Path] | None, cracks_path: str | Path | None = None,
                     drywall_path: str | Path | None = None) -> dict[str, Path]:
    """{class: root}, one root per class, from "CLASS=ROOT" strings or a {class: root} mapping and the seed's two
    options; each root must exist."""
    if isinstance(specs, Mapping):
        specs = [f"{name}={root}" for name, root in specs.items()]
    pairs: list[tuple[str, Path, str]] = []
    for spec in specs or []:
        if "=" not in spec:
            raise ValueError(f"--data {spec!r}: expected CLASS=ROOT, e.g. crack=data/cracks or taping=data/drywall")
        cls, root = split_root_spec(spec)
        pairs.append((cls, root, f"--data {spec}"))  # type: ignore[arg-type]
    if cracks_path is not None:
        pairs.append(("crack", Path(cracks_path).expanduser(), f"--cracks-path {cracks_path}"))
    if drywall_path is not None:
        pairs.append(("taping", Path(drywall_path).expanduser(), f"--drywall-path {drywall_path}"))
    roots: dict[str, Path] = {}
    for cls, path, origin in pairs:
        if cls in roots:
            raise ValueError(f"{origin}: class {cls!r} given twice (already {roots[cls]}); give one root per class")
        if not path.is_dir():
            raise FileNotFoundError(f"{origin}: dataset root {path} does not exist")
        roots[cls] = path
    return {cls: roots[cls] for cls in CLASSES if cls in roots}


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --data CLASS=ROOT (repeatable), --cracks-path and --drywall-path."""
    parser.add_argument("--data", action="append", default=[], metavar="CLASS=ROOT",
                        help=f"a dataset root for a class ({'/'.join(CLASSES)}); repeatable")
    parser.add_argument("--cracks-path", type=Path, default=None, help="same as --data crack=PATH")
    parser.add_argument("--drywall-path", type=Path, default=None, help="same as --data taping=PATH")


# ----------------------------------------------------------------------------- layouts and pairing

def detect_layout(split_dir: str | Path) -> str:
    """"coco" (json in the folder), "masks" (images/ + masks/) or "yolo" (images/ + labels/)."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: no such split folder")
    if (split_dir / COCO_JSON).is_file():
        return "coco"
    if (split_dir / "images").is_dir() and (split_dir / "masks").is_dir():
        return "masks"
    if (split_dir / "images").is_dir() and (split_dir / "labels").is_dir():
        return "yolo"
    found = sorted(p.name for p in split_dir.iterdir())[:10]
    raise DatasetError(
        f"{split_dir}: unknown layout (found {found}); expected images/ + masks/, images/ + labels/, "
        f"or images with {COCO_JSON}"
    )


def available_splits(root: str | Path) -> list[str]:
    """The split folders (train/valid/test) present under a dataset root."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such dataset root")
    return [s for s in SPLITS if (root / s).is_dir()]


def _by_stem(paths: list[Path], what: str, errors: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in paths:
        if p.stem in out:
            errors.append(f"two {what} named {p.stem!r}: {out[p.stem].name}, {p.name}")
        out[p.stem] = p
    return out


def visible_files(folder: Path, images: bool) -> list[Path]:
    """Visible files of a folder (image files only if `images`), sorted; [] if the folder is absent."""
    if not folder.is_dir():
        return []
    files = (p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return sorted(p for p in files if is_image_file(p) or not images)


def _pair(split_dir: Path, images: dict[str, Path], others: dict[str, Path], kind: str, errors: list[str]) -> None:
    for stem, image in images.items():
        if stem not in others:
            errors.append(f"image without {kind}: {image.relative_to(split_dir)}")
    for stem, other in others.items():
        if stem not in images:
            errors.append(f"{kind} without image: {other.relative_to(split_dir)}")


def list_samples(root: str | Path, split: str, cls: str | None) -> list[Sample]:
    """Samples of one split, paired by basename; missing or extra files raise one DatasetError listing all.

    cls None (an audit of a folder of unknown class) leaves the samples' class None."""
    root, cls = Path(root), (None if cls is None else normalise_class(cls))
    split_dir = root / split
    layout = detect_layout(split_dir)
    errors: list[str] = []
    if layout == "coco":
        samples = _coco_samples(root, split, cls, errors)
    else:
        images = _by_stem(visible_files(split_dir / "images", True), "images", errors)
        labels = _by_stem([p for p in visible_files(split_dir / "labels", False) if p.suffix == ".txt"], "labels", errors)
        if layout == "masks":
            masks = _by_stem(visible_files(split_dir / "masks", True), "masks", errors)
            _pair(split_dir, images, masks, "mask", errors)
        else:
            masks = {}
            _pair(split_dir, images, labels, "label", errors)
        samples = [Sample(img, masks.get(s), cls, split, root, label=labels.get(s)) for s, img in images.items()]
    if errors:
        shown = "\n  ".join(errors[:50]) + (f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else "")
        raise DatasetError(f"{split_dir} ({layout} layout): {len(errors)} problem{'s' if len(errors) > 1 else ''}:\n  {shown}")
    if not samples:
        raise DatasetError(f"{split_dir} ({layout} layout): no images")
    return samples


def _coco_samples(root: Path, split: str, cls: str, errors: list[str]) -> list[Sample]:
    split_dir = root / split
    json_path = split_dir / COCO_JSON
    listed = set(_coco_images(json_path, json_path.stat().st_mtime_ns))
    images = {p.name: p for p in visible_files(split_dir, True)}
    has_masks = (split_dir / "masks").is_dir()
    masks = _by_stem(visible_files(split_dir / "masks", True), "masks", errors) if has_masks else {}
    for name in sorted(listed - set(images)):
        errors.append(f"listed in {COCO_JSON} but missing: {name}")
    for name in sorted(set(images) - listed):
        errors.append(f"image not listed in {COCO_JSON}: {name}")
    present = {Path(n).stem: images[n] for n in sorted(listed & set(images))}
    if has_masks:
        _pair(split_dir, present, masks, "mask", errors)
    return [Sample(img, masks.get(s), cls, split, root, coco=json_path) for s, img in present.items()]


@lru_cache(maxsize=16)
def _coco_images(json_path: Path, mtime_ns: int) -> dict[str, dict]:
    """read_coco_images, cached per file version."""
    return read_coco_images(json_path)


@lru_cache(maxsize=16)
def _coco_export(json_path: Path, mtime_ns: int):  # noqa: ANN202 - cached CocoExport
    """read_coco, cached per file version."""
    return read_coco(json_path)


def load_target(sample: Sample) -> np.ndarray:
    """The sample's mask as bool (H, W): the mask file, or its labels rasterised at the image's size."""
    if sample.mask is not None:
        return load_mask(sample.mask)
    width, height = image_size(sample.image)
    if sample.label is not None:
        return yolo_mask(sample.label, width, height)
    if sample.coco is not None:
        export = _coco_export(sample.coco, sample.coco.stat().st_mtime_ns)
        return coco_mask(export, sample.image.name, size=(width, height))
    raise DatasetError(f"{sample.image}: sample has no mask, label or COCO file")


# ----------------------------------------------------------------------------- photo-grouped splits

def photo_key(path: str | Path) -> str:
    """The original photo of a file: Roboflow's `<original>_jpg.rf.<hash>.jpg` -> `<original>`, else the stem."""
    name = Path(path).name
    if ".rf." in name:
        return _ROBOFLOW_SUFFIX.sub("", name.split(".rf.", 1)[0])
    return Path(name).stem


class Shot(NamedTuple):
    """A photo's place in the camera sequence that wrote it."""

    sequence: str  # camera counter prefix (IMG_), or prefix and date (IMG_20220627)
    position: int  # counter, or second of the day
    gap: int  # positions at most this far apart are taken as one scene


def camera_shot(key: str) -> Shot | None:
    """The camera sequence and position of a photo key a camera wrote, else None.

    Counter names (DCF: four characters, then a four-digit counter: IMG_8220, DSC01234, P1010001)
    give the counter and SEQUENCE_GAP; date-time names (IMG_20220627_111136, PXL_20220627_111136123)
    give the second of the day and SEQUENCE_SECONDS. Other numbered names (dataset enumerations,
    synthetic `synth_cracks_train_00012`, renamed `2000x1500_9_resized`) are not shot order: None.
    """
    stamp = _DATE_TIME_NAME.match(key)
    if stamp:
        hours, minutes, seconds = (int(stamp["time"][k:k + 2]) for k in (0, 2, 4))
        return Shot(f"{stamp['prefix'].upper()}{stamp['date']}", 3600 * hours + 60 * minutes + seconds, SEQUENCE_SECONDS)
    counter = _COUNTER_NAME.match(key)
    if counter:
        return Shot(counter["prefix"].upper(), int(counter["number"]), SEQUENCE_GAP)
    return None


def _sequence_links(keys: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs of photo keys of one camera sequence within its gap, each shot linked to the next."""
    sequences: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for key in sorted(set(keys)):
        shot = camera_shot(key)
        if shot is not None:
            sequences.setdefault((shot.sequence, shot.gap), []).append((shot.position, key))
    links = []
    for (_, gap), shots in sequences.items():
        shots.sort()
        links += [(a, b) for (n, a), (m, b) in zip(shots, shots[1:]) if m - n <= gap]
    return links


def _photo_groups(samples: Sequence[Sample], groups: Sequence[set[Path]] | None) -> list[str]:
    """Group key per sample: its photo key, merged (union-find) with camera-sequence neighbours and any extra groups."""
    keys = [f"{s.cls}/{photo_key(s.image)}" for s in samples]
    parent = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    def join(members: Sequence[str]) -> None:
        roots = sorted({find(m) for m in members})
        for r in roots[1:]:
            parent[r] = roots[0]

    for cls in sorted({s.cls for s in samples}):
        for a, b in _sequence_links([photo_key(s.image) for s in samples if s.cls == cls]):
            join([f"{cls}/{a}", f"{cls}/{b}"])
    if groups:  # resolved: a report written with a relative root still matches the samples of an absolute one
        by_path = {Path(s.image).resolve(): k for s, k in zip(samples, keys)}
        for group in groups:
            join([by_path[r] for r in (Path(p).resolve() for p in group) if r in by_path])
    return [find(k) for k in keys]


def _held_back(sizes: Mapping[str, int], val_fraction: float, seed: int) -> set[str]:
    """Groups for validation: in seeded hash order, each taken while it brings the images held back closer to
    val_fraction of all; at least one group on each side when there are two or more."""
    ranked = sorted(sizes, key=lambda k: hashlib.sha1(f"{seed}:{k}".encode()).hexdigest())
    target = val_fraction * sum(sizes.values())
    chosen, held = set(), 0
    for key in ranked:
        if held + sizes[key] / 2 <= target:
            chosen.add(key)
            held += sizes[key]
    if val_fraction > 0 and not chosen and len(ranked) >= 2:  # every group is bigger than twice the target
        chosen = {min(ranked, key=lambda k: sizes[k])}
    if len(chosen) == len(ranked) and len(ranked) >= 2:
        chosen.discard(ranked[-1])
    return chosen


def split_train_val(samples: Sequence[Sample], val_fraction: float, seed: int,
                    groups: Sequence[set[Path]] | None = None) -> tuple[list[Sample], list[Sample]]:
    """Deterministic train/val split by photo group (per class): copies of one photo, shots of one camera sequence and
    any extra `groups` (e.g. `textseg.data.audit.report_groups`) stay on one side; val_fraction counts images."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction {val_fraction} must be in [0, 1)")
    keys = _photo_groups(samples, groups)
    val_keys: set[str] = set()
    for cls in sorted({s.cls for s in samples}):
        sizes = Counter(k for s, k in zip(samples, keys) if s.cls == cls)
        val_keys |= _held_back(sizes, val_fraction, seed)
    train = [s for s, k in zip(samples, keys) if k not in val_keys]
    val = [s for s, k in zip(samples, keys) if k in val_keys]
    return train, val


GROUPS_FILE = "photo_groups.json"
"""Written into a dataset root by `textseg audit ROOT --photo-groups`: pairs of its files that are copies of one photo
or shots of one scene under unrelated names, which every validation carve of the root keeps on one side."""


def read_photo_groups(root: str | Path) -> list[set[Path]]:
    """The pairs of ROOT/photo_groups.json as groups for split_train_val ([] when the root has none)."""
    path = Path(root) / GROUPS_FILE
    if not path.is_file():
        return []
    try:
        pairs = json.loads(path.read_text())["pairs"]
        return [{(Path(root) / p["a"]).resolve(), (Path(root) / p["b"]).resolve()} for p in pairs]
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: not a photo-groups file ({exc}); rewrite it with `textseg audit {root} --photo-groups`") from exc


def collect_split(roots: dict[str, str | Path], split: str, val_fraction: float = 0.15, seed: int = 0,
                  groups: Sequence[set[Path]] | None = None) -> list[Sample]:
    """Samples of a split over {class: root}; without valid/, "valid" is a photo-grouped part carved from train
    (`split_train_val`, with the extra `groups` of files that must stay together)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    out: list[Sample] = []
    for cls, root in roots.items():
        cls, root = normalise_class(cls), Path(root)
        present = available_splits(root)
        if split in present and not (split == "train" and "valid" not in present):
            out.extend(list_samples(root, split, cls))
        elif split in ("train", "valid") and "train" in present:
            train, val = split_train_val(list_samples(root, "train", cls), val_fraction, seed, [*(groups or []), *read_photo_groups(root)])
            logger.info("%s: no valid/ split; holding back %d of %d train images as valid", root, len(val), len(train) + len(val))
            out.extend(train if split == "train" else val)
        else:
            raise DatasetError(f"{root}: no {split}/ split (found {present or 'none'}) for class {cls}")
    return out


# ----------------------------------------------------------------------------- torch Dataset

def resize_pair(image: np.ndarray, mask: np.ndarray, size: int | tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image (H, W, 3) uint8 bilinear and mask (H, W) bool nearest, both to size: a side (square) or (width, height)."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    img = resize_rgb(image, size)
    msk = np.array(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 127
    return img, msk.astype(np.uint8)


class SegDataset(torch.utils.data.Dataset):
    """Image, mask and a sampled prompt per sample; negatives pair a prompt of the other class with an empty mask,
    unrelated examples a prompt for something textseg does not segment (prompt class NONE) with an empty mask.

    Call set_epoch before iterating an epoch; DataLoader workers copy the dataset when an iterator starts,
    so use persistent_workers=False (the default) for set_epoch to reach them.
    """

    def __init__(self, samples: Sequence[Sample], image_size: int = MODEL_SIZE, negative_rate: float = 0.0,
                 flip: bool = False, seed: int = 0, preload: bool = False, augment: bool = False,
                 unrelated_rate: float = 0.0) -> None:
        for name, rate in (("negative_rate", negative_rate), ("unrelated_rate", unrelated_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} {rate} must be in [0, 1]")
        if negative_rate + unrelated_rate > 1.0:
            raise ValueError(f"negative_rate {negative_rate} + unrelated_rate {unrelated_rate} must not exceed 1")
        self.samples = list(samples)
        self.image_size = image_size
        self.negative_rate, self.unrelated_rate = negative_rate, unrelated_rate
        self.flip = flip
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self._cache: list[tuple[np.ndarray, np.ndarray]] | None = None
        if preload:
            self._cache = [self._load(i) for i in progress_bar(range(len(self.samples)), desc="loading", disable=len(self.samples) < 100)]

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; prompt, negative and flip are a pure function of (seed, epoch, index)."""
        self.epoch = int(epoch)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Resized image (S, S, 3) uint8 and mask (S, S) uint8 0/1."""
        sample = self.samples[index]
        image, mask = load_image(sample.image), load_target(sample)
        if image.shape[:2] != mask.shape:
            raise DatasetError(f"{sample.image}: image is {image.shape[1]}x{image.shape[0]} but its mask is {mask.shape[1]}x{mask.shape[0]}")
        return resize_pair(image, mask, self.image_size)

    def draw(self, index: int) -> tuple[bool, str, int, str]:
        """(negative, prompt, flip, the prompt's class: the image's, the other one, or NONE) of an index at the
        current epoch; negative means the target is empty because the prompt asks for something else."""
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
        roll = rng.random()
        cls = self.samples[index].cls
        prompt_cls = other_class(cls) if roll < self.negative_rate else NONE if roll < self.negative_rate + self.unrelated_rate else cls
        prompt = sample_prompt(prompt_cls, rng)
        flip = int(rng.random() < 0.5) if self.flip else 0
        return prompt_cls != cls, prompt, flip, prompt_cls

    def augmentation(self, index: int) -> tuple[float, ...]:
        """Zoom and colour-jitter parameters of an index at the current epoch (textseg.data.augment; identity when off)."""
        if not self.augment:
            return IDENTITY
        return draw_params(random.Random(f"{self.seed}:{self.epoch}:{index}:augment"))

    def __getitem__(self, index: int) -> dict:
        image, mask = self._cache[index] if self._cache is not None else self._load(index)
        negative, prompt, flip, prompt_cls = self.draw(index)
        if flip:
            image, mask = image[:, ::-1], mask[:, ::-1]
        image_t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0  # (3, S, S)
        mask_t = torch.from_numpy(np.ascontiguousarray(mask)).float()[None]  # (1, S, S)
        if negative:
            mask_t = torch.zeros_like(mask_t)
        sample = self.samples[index]
        return {"image": image_t, "mask": mask_t, "prompt": prompt, "cls": sample.cls, "negative": negative,
                "prompt_cls": prompt_cls, "has_mask": bool(mask.any()),
                "flip": flip, "augment": torch.tensor(self.augmentation(index)), "path": str(sample.image), "index": index}
