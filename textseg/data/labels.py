"""YOLO and COCO labels: parsing, class mapping, and rasterising them to masks (`textseg extract-masks`).

Masks are written as `SPLIT/masks/NAME.png` (NAME = image stem, 0/255, at the image's size), the
images + masks layout every later step reads. Decisions, documented here once:

- Classes. A dataset root holds one class; labels only decide which shapes are foreground. COCO
  categories and YOLO `data.yaml` names map to a textseg class by keywords in the name (then the
  supercategory): "crack" -> crack; "taping", "tape", "joint", "join", "seam", "drywall" -> taping.
  Roboflow's umbrella category (id 0, supercategory "none") maps the same way and is harmless.
  Override with `class_map` {category name or id: class or "ignore"} (`--class-map NAME=CLASS`).
  A YOLO split without `data.yaml` accepts class id 0 as the dataset's class; other ids need a
  class_map entry ("1=crack"). Shapes of a category mapped to "ignore" are dropped. A split whose
  shapes map to both classes is an error (split it into two roots, or ignore one category).
- An image without a label file (YOLO) or without an `images` entry (COCO) is listed in the report
  and gets no mask; an empty label file, or a COCO image without annotations, gets an empty mask.
- Coordinates outside the image are clipped (logged, counted); boxes of zero width or height draw
  nothing (counted); any other bad input raises LabelError naming the file and line or annotation.
- All labels are parsed and checked before any mask is drawn; masks are drawn into a staging folder
  and moved into place only when every split succeeded, so a failing run leaves no partial files.
  Existing masks are kept (counted as skipped) unless overwrite=True.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml
from pycocotools import mask as mask_utils

from textseg.data.images import image_size, is_image_file, save_mask
from textseg.files import atomic_path
from textseg.progress import progress_bar
from textseg.prompts import normalise_class

logger = logging.getLogger(__name__)

COCO_JSON = "_annotations.coco.json"
IGNORE = "ignore"
DATASET_CLASS = ""  # YOLO class 0 without data.yaml: the class of whatever root the split belongs to
CLASS_KEYWORDS: dict[str, tuple[str, ...]] = {
    "crack": ("crack",),
    "taping": ("taping", "tape", "joint", "join", "seam", "drywall"),
}
_EPS = 1e-6


class LabelError(ValueError):
    """Bad label input; the message names the file and line (YOLO) or annotation id (COCO)."""


@dataclass(frozen=True)
class YoloShape:
    """One YOLO label line: a box (cx, cy, w, h) or a polygon (N, 2), normalised to [0, 1]."""

    cls_id: int
    kind: str  # "box" | "polygon"
    coords: np.ndarray  # box: (4,) cx cy w h; polygon: (N, 2) x y
    line: int = 0  # 1-based line in its file, 0 if not read from a file


@dataclass
class RasterStats:
    """Counts of shapes drawn, clipped at the image border, and skipped for zero width or height."""

    shapes: int = 0
    clipped: int = 0
    zero_width: int = 0


@dataclass(frozen=True)
class _PixelShape:
    kind: str  # "box" (x0, y0, x1, y1) | "polygon" flat [x0, y0, x1, y1, ...] | "rle" pycocotools RLE
    data: Any
    where: str


# ----------------------------------------------------------------------------- class mapping

def class_from_keywords(*texts: str) -> str | None:
    """The class whose keywords appear in the first text that matches exactly one class, else None."""
    for text in texts:
        low = str(text).lower()
        hits = {cls for cls, words in CLASS_KEYWORDS.items() if any(w in low for w in words)}
        if len(hits) == 1:
            return hits.pop()
        if len(hits) > 1:
            return None
    return None


def parse_class_map(items: Sequence[str] | dict[str, str] | None) -> dict[str, str]:
    """{"NAME": class} from "NAME=CLASS" strings or a dict; class aliases allowed, plus "ignore"."""
    if items is None:
        return {}
    pairs = items.items() if isinstance(items, dict) else [_split_pair(s) for s in items]
    out = {}
    for name, value in pairs:
        value = str(value).strip()
        out[str(name).strip()] = IGNORE if value.lower() == IGNORE else normalise_class(value)
    return out


def _split_pair(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ValueError(f"--class-map {item!r}: expected NAME=CLASS, e.g. 'drywall-join=taping' or '1=crack'")
    name, value = item.rsplit("=", 1)
    return name, value


def _lookup(class_map: dict[str, str], name: str | None, cid: int) -> str | None:
    lowered = {k.lower(): v for k, v in class_map.items()}
    if name is not None and name.lower() in lowered:
        return lowered[name.lower()]
    return class_map.get(str(cid))


# ----------------------------------------------------------------------------- YOLO

def parse_yolo_file(path: str | Path) -> list[YoloShape]:
    """Parse a YOLO txt file: `cls cx cy w h` boxes and `cls x1 y1 x2 y2 ...` polygons, normalised."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LabelError(f"{path}: not a text file ({exc}); expected YOLO lines 'cls x y ...'") from exc
    shapes = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            shapes.append(_parse_yolo_line(line, f"{path}:{number}", number))
    return shapes


def _parse_yolo_line(line: str, where: str, number: int) -> YoloShape:
    tokens = line.split()
    try:
        cls_id = int(tokens[0])
    except ValueError:
        raise LabelError(f"{where}: class id {tokens[0]!r} is not an integer") from None
    if cls_id < 0:
        raise LabelError(f"{where}: negative class id {cls_id}")
    values = []
    for tok in tokens[1:]:
        try:
            v = float(tok)
        except ValueError:
            raise LabelError(f"{where}: coordinate {tok!r} is not a number") from None
        if not math.isfinite(v):
            raise LabelError(f"{where}: coordinate {tok!r} is not finite")
        values.append(v)
    n = len(values)
    if n == 4:
        if values[2] < 0 or values[3] < 0:
            raise LabelError(f"{where}: box with negative width or height {values[2:]}")
        return YoloShape(cls_id, "box", np.asarray(values, dtype=np.float64), number)
    if n % 2:
        raise LabelError(f"{where}: odd number of coordinates ({n}); expected 'cls cx cy w h' or 'cls x1 y1 x2 y2 ...'")
    if n < 6:
        raise LabelError(f"{where}: {n} coordinates; a box needs 4, a polygon at least 3 points (6 numbers)")
    return YoloShape(cls_id, "polygon", np.asarray(values, dtype=np.float64).reshape(-1, 2), number)


def write_yolo_file(path: str | Path, shapes: Sequence[YoloShape]) -> None:
    """Write shapes as a YOLO txt file (one line each, 6 decimals), atomically."""
    lines = []
    for s in shapes:
        coords = " ".join(f"{v:.6f}" for v in np.asarray(s.coords, dtype=np.float64).reshape(-1))
        lines.append(f"{int(s.cls_id)} {coords}")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def yolo_class_names(split_dir: str | Path) -> tuple[dict[int, str] | None, Path | None]:
    """Class names from a `data.yaml` in the split folder or its dataset root (Roboflow YOLO export)."""
    split_dir = Path(split_dir)
    for folder in (split_dir, split_dir.parent):
        path = folder / "data.yaml"
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise LabelError(f"{path}: invalid YAML ({exc})") from exc
            names = data.get("names") if isinstance(data, dict) else None
            if isinstance(names, list):
                return {i: str(n) for i, n in enumerate(names)}, path
            if isinstance(names, dict):
                return {int(k): str(v) for k, v in names.items()}, path
            raise LabelError(f"{path}: no 'names:' list; expected e.g. names: ['crack']")
    return None, None


def yolo_class_table(split_dir: str | Path, class_map: dict[str, str] | None = None) -> dict[int, str]:
    """{YOLO class id: textseg class, "ignore", or "" (the dataset's class)} for ids that are known."""
    names, _ = yolo_class_names(split_dir)
    class_map = parse_class_map(class_map)
    table: dict[int, str] = {} if names else {0: DATASET_CLASS}
    for cid, name in (names or {}).items():
        mapped = _lookup(class_map, name, cid) or class_from_keywords(name)
        if mapped is not None:
            table[cid] = mapped
    for key, value in class_map.items():
        if key.isdigit():  # an explicit id wins over names and the no-yaml default
            table[int(key)] = value
    return table


def _check_yolo_class(shape: YoloShape, path: Path, table: dict[int, str], names: dict[int, str] | None) -> str:
    if shape.cls_id in table:
        return table[shape.cls_id]
    where = f"{path}:{shape.line}"
    if names and shape.cls_id in names:
        name = names[shape.cls_id]
        raise LabelError(
            f"{where}: class {shape.cls_id} ({name!r} in data.yaml) maps to no textseg class; "
            f"run textseg extract-masks with --class-map '{name}=crack' (or taping, or ignore)"
        )
    known = f"data.yaml names {names}" if names else "no data.yaml, so only class 0 is known"
    raise LabelError(f"{where}: unknown class {shape.cls_id} ({known}); run textseg extract-masks with "
                     f"--class-map {shape.cls_id}=crack (or taping, or ignore)")


def _yolo_pixels(shape: YoloShape, width: int, height: int, where: str, stats: RasterStats) -> _PixelShape | None:
    if shape.kind == "box":
        cx, cy, w, h = (float(v) for v in shape.coords)
        box = ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
        return _box_pixels(box, width, height, where, stats)
    xy = np.asarray(shape.coords, dtype=np.float64) * np.array([width, height])
    return _polygon_pixels(xy, width, height, where, stats)


def _box_pixels(box: tuple[float, ...], width: int, height: int, where: str, stats: RasterStats) -> _PixelShape | None:
    x0, y0, x1, y1 = box
    stats.shapes += 1
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        stats.zero_width += 1
        logger.debug("%s: zero-width box draws nothing", where)
        return None
    clipped = (max(0.0, min(x0, width)), max(0.0, min(y0, height)), max(0.0, min(x1, width)), max(0.0, min(y1, height)))
    if any(abs(a - b) > _EPS * max(width, height) for a, b in zip(clipped, box)):
        stats.clipped += 1
        logger.warning("%s: box %s outside the %dx%d image, clipped", where, [round(v, 1) for v in box], width, height)
    if clipped[2] - clipped[0] <= 0 or clipped[3] - clipped[1] <= 0:
        return None
    return _PixelShape("box", clipped, where)


def _polygon_pixels(xy: np.ndarray, width: int, height: int, where: str, stats: RasterStats) -> _PixelShape:
    stats.shapes += 1
    clipped = np.clip(xy, 0.0, [width, height])
    if np.abs(clipped - xy).max() > _EPS * max(width, height):
        stats.clipped += 1
        logger.warning("%s: polygon outside the %dx%d image, clipped", where, width, height)
    return _PixelShape("polygon", clipped.reshape(-1), where)


def rasterize_yolo(shapes: Sequence[YoloShape], width: int, height: int, stats: RasterStats | None = None) -> np.ndarray:
    """Union of YOLO shapes as a bool mask (H, W); clips outside coordinates (warning), skips zero-width boxes."""
    stats = RasterStats() if stats is None else stats
    pixel = [_yolo_pixels(s, width, height, f"line {s.line}", stats) for s in shapes]
    return _draw([p for p in pixel if p is not None], width, height)


def yolo_mask(label_path: str | Path, width: int, height: int, class_map: dict[str, str] | None = None,
              stats: RasterStats | None = None) -> np.ndarray:
    """Mask (H, W) bool of one YOLO label file, with class checks against the split's data.yaml."""
    split_dir = Path(label_path).parent.parent
    names, table = yolo_class_names(split_dir)[0], yolo_class_table(split_dir, class_map)
    shapes = _yolo_shapes(Path(label_path), width, height, names, table, stats or RasterStats())[0]
    return _draw(shapes, width, height)


def _yolo_shapes(label_path: Path, width: int, height: int, names: dict[int, str] | None, table: dict[int, str],
                 stats: RasterStats) -> tuple[list[_PixelShape], set[str]]:
    out, classes = [], set()
    for shape in parse_yolo_file(label_path):
        cls = _check_yolo_class(shape, label_path, table, names)
        if cls == IGNORE:
            continue
        classes.add(cls)
        pixel = _yolo_pixels(shape, width, height, f"{label_path}:{shape.line}", stats)
        if pixel is not None:
            out.append(pixel)
    return out, classes


# ----------------------------------------------------------------------------- drawing

def _draw(shapes: Sequence[_PixelShape], width: int, height: int) -> np.ndarray:
    """Rasterise pixel-space shapes into a bool mask (H, W): polygons and RLE via pycocotools."""
    mask = np.zeros((height, width), dtype=bool)
    rles = []
    for s in shapes:
        if s.kind == "box":
            x0, y0, x1, y1 = s.data
            c0, r0 = int(math.floor(x0 + 0.5)), int(math.floor(y0 + 0.5))  # pixels whose centre is inside
            c1, r1 = max(int(math.floor(x1 + 0.5)), c0 + 1), max(int(math.floor(y1 + 0.5)), r0 + 1)
            mask[min(r0, height - 1):r1, min(c0, width - 1):c1] = True  # a box of positive size covers >= 1 px
        elif s.kind == "polygon":
            rles.extend(mask_utils.frPyObjects([list(map(float, s.data))], height, width))
        else:
            rles.append(s.data)
    if rles:
        with warnings.catch_warnings():  # pycocotools' decode trips numpy 2's __array__(copy=) deprecation
            warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
            mask |= mask_utils.decode(mask_utils.merge(rles)).astype(bool)
    return mask


# ----------------------------------------------------------------------------- COCO

@dataclass
class CocoExport:
    """A COCO json: images by file name, annotations by image id, categories and their textseg classes."""

    path: Path
    images: dict[str, dict]  # file name -> image record (id, file_name, width, height)
    annotations: dict[int, list[dict]]  # image id -> annotations (categories mapped to "ignore" dropped)
    categories: dict[int, dict]
    classes: dict[int, str]  # category id -> textseg class or "ignore" (only categories that map)

    def used_classes(self) -> set[str]:
        """Textseg classes that annotations use."""
        return {self.classes[a["category_id"]] for anns in self.annotations.values() for a in anns}


def _load_coco_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such COCO file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LabelError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc
    if not isinstance(data, dict) or any(not isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
        raise LabelError(f"{path}: not a COCO file; expected lists 'images', 'annotations' and 'categories'")
    return data


def read_coco_images(json_path: str | Path) -> dict[str, dict]:
    """Image records of a COCO json by file name, without checking annotations or classes."""
    path = Path(json_path)
    return _coco_images(path, _load_coco_json(path)["images"])[0]


def read_coco(json_path: str | Path, class_map: dict[str, str] | None = None) -> CocoExport:
    """Read and check a COCO json (Roboflow export); every annotation must map to a class and an image."""
    path = Path(json_path)
    data = _load_coco_json(path)
    class_map = parse_class_map(class_map)
    categories = {int(c["id"]): c for c in data["categories"]}
    classes = {}
    for cid, cat in categories.items():
        name = str(cat.get("name", ""))
        mapped = _lookup(class_map, name, cid) or class_from_keywords(name, str(cat.get("supercategory", "")))
        if mapped is not None:
            classes[cid] = mapped
    images, by_id = _coco_images(path, data["images"])
    annotations: dict[int, list[dict]] = {i: [] for i in by_id}
    for ann in data["annotations"]:
        cls = _check_annotation(path, ann, by_id, categories, classes)
        if cls != IGNORE:
            annotations[ann["image_id"]].append(ann)
    return CocoExport(path, images, annotations, categories, classes)


def _coco_images(path: Path, records: list) -> tuple[dict[str, dict], dict[int, dict]]:
    images, by_id = {}, {}
    for rec in records:
        if not isinstance(rec, dict) or not {"id", "file_name", "width", "height"} <= set(rec):
            raise LabelError(f"{path}: image record {rec!r} lacks id, file_name, width or height")
        if rec["id"] in by_id:
            raise LabelError(f"{path}: image id {rec['id']} appears twice")
        by_id[rec["id"]] = rec
        images[rec["file_name"]] = rec
    return images, by_id


def _check_annotation(path: Path, ann: dict, by_id: dict, categories: dict, classes: dict) -> str:
    aid = ann.get("id", "?") if isinstance(ann, dict) else "?"
    if not isinstance(ann, dict) or "image_id" not in ann or "category_id" not in ann:
        raise LabelError(f"{path}: annotation {aid}: lacks image_id or category_id")
    if ann["image_id"] not in by_id:
        raise LabelError(f"{path}: annotation {aid} points at image id {ann['image_id']}, which is not in 'images'")
    cid = ann["category_id"]
    if cid not in categories:
        raise LabelError(f"{path}: annotation {aid} has category id {cid}, which is not in 'categories'")
    if cid not in classes:
        cat = categories[cid]
        raise LabelError(
            f"{path}: annotation {aid}: category {cid} ({cat.get('name')!r}, supercategory {cat.get('supercategory')!r}) "
            f"maps to no textseg class; run textseg extract-masks with --class-map '{cat.get('name')}=crack' "
            "(or taping, or ignore)"
        )
    return classes[cid]


def _numbers(values: Any, where: str) -> list[float]:
    if not isinstance(values, list):
        raise LabelError(f"{where}: expected a list of numbers, got {type(values).__name__}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise LabelError(f"{where}: coordinate {v!r} is not a number")
    return [float(v) for v in values]


def _coco_pixels(path: Path, ann: dict, width: int, height: int, stats: RasterStats) -> list[_PixelShape]:
    where = f"{path}: annotation {ann.get('id', '?')}"
    seg = ann.get("segmentation")
    if isinstance(seg, dict):
        return [_coco_rle(seg, width, height, where, stats)]
    if seg:
        if not isinstance(seg, list):
            raise LabelError(f"{where}: segmentation is neither polygons nor RLE")
        out = []
        for poly in seg:
            xy = _numbers(poly, where)
            if len(xy) % 2:
                raise LabelError(f"{where}: polygon with an odd number of coordinates ({len(xy)})")
            if len(xy) < 6:
                raise LabelError(f"{where}: polygon with {len(xy)} coordinates; needs at least 3 points")
            out.append(_polygon_pixels(np.asarray(xy).reshape(-1, 2), width, height, where, stats))
        return out
    bbox = _numbers(ann.get("bbox"), where)
    if len(bbox) != 4:
        raise LabelError(f"{where}: bbox {bbox} is not [x, y, width, height]")
    x, y, w, h = bbox
    if w < 0 or h < 0:
        raise LabelError(f"{where}: bbox {bbox} has negative width or height")
    box = _box_pixels((x, y, x + w, y + h), width, height, where, stats)
    return [] if box is None else [box]


def _coco_rle(seg: dict, width: int, height: int, where: str, stats: RasterStats) -> _PixelShape:
    size = seg.get("size")
    if list(size or []) != [height, width]:
        raise LabelError(f"{where}: RLE size {size} differs from the image size [{height}, {width}]")
    counts = seg.get("counts")
    if isinstance(counts, list):
        rle = mask_utils.frPyObjects(seg, height, width)
    elif isinstance(counts, (str, bytes)):
        rle = {"size": [height, width], "counts": counts.encode() if isinstance(counts, str) else counts}
    else:
        raise LabelError(f"{where}: RLE counts must be a list or a string")
    stats.shapes += 1
    return _PixelShape("rle", rle, where)


def coco_mask(export: CocoExport, file_name: str, stats: RasterStats | None = None,
              size: tuple[int, int] | None = None) -> np.ndarray:
    """Mask (H, W) bool of one image of a COCO export: union of its polygons, RLEs and (if no segmentation) boxes."""
    rec = export.images.get(file_name)
    if rec is None:
        raise LabelError(f"{export.path}: no image record for {file_name!r}")
    width, height = size or (int(rec["width"]), int(rec["height"]))
    stats = stats or RasterStats()
    shapes = [s for ann in export.annotations[rec["id"]] for s in _coco_pixels(export.path, ann, width, height, stats)]
    return _draw(shapes, width, height)


# ----------------------------------------------------------------------------- extraction

@dataclass
class SplitReport:
    """What extraction did for one split folder."""

    split_dir: Path
    layout: str  # "yolo" | "coco" | "masks" (nothing to extract)
    classes: list[str] = field(default_factory=list)
    written: int = 0
    skipped: int = 0  # masks that existed and were kept
    empty: int = 0  # written masks without foreground
    clipped: int = 0
    zero_width: int = 0
    images_without_labels: list[Path] = field(default_factory=list)
    labels_without_images: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the CLI."""
        if self.layout == "masks":
            return f"{self.split_dir}: masks already present (no labels to extract)"
        text = (
            f"{self.split_dir}: {self.layout}, class {'/'.join(self.classes) or '-'}: {self.written} written, "
            f"{self.skipped} kept, {self.empty} empty, {self.clipped} clipped shapes, {self.zero_width} zero-width boxes"
        )
        if self.images_without_labels:
            names = ", ".join(p.name for p in self.images_without_labels[:5])
            more = "..." if len(self.images_without_labels) > 5 else ""
            text += f"; {len(self.images_without_labels)} images without labels, no mask written ({names}{more})"
        if self.labels_without_images:
            text += f"; {len(self.labels_without_images)} label files without an image"
        return text


@dataclass
class ExtractReport:
    """Extraction report over all splits."""

    splits: list[SplitReport] = field(default_factory=list)

    def total(self, name: str) -> int:
        """Sum of a count (written, skipped, empty, clipped, zero_width) over splits."""
        return sum(getattr(s, name) for s in self.splits)

    @property
    def images_without_labels(self) -> list[Path]:
        """All images that got no mask because they have no labels."""
        return [p for s in self.splits for p in s.images_without_labels]

    def summary(self) -> str:
        """One line per split."""
        return "\n".join(s.summary() for s in self.splits)


@dataclass
class _Job:
    image: Path
    mask: Path
    width: int
    height: int
    shapes: list[_PixelShape]


def label_splits(path: str | Path) -> list[Path]:
    """Split folders under a dataset root (train/valid/test), or [path] if it is a split folder itself."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such dataset folder")
    if (path / COCO_JSON).is_file() or (path / "images").is_dir():
        return [path]
    splits = [path / s for s in ("train", "valid", "test") if (path / s).is_dir()]
    if not splits:
        raise FileNotFoundError(f"{path}: no train/valid/test folders and no images/ or {COCO_JSON}; is this a dataset root?")
    return splits


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p)) if folder.is_dir() else []


def _check_stems(paths: list[Path]) -> None:
    seen: dict[str, Path] = {}
    for p in paths:
        if p.stem in seen:
            raise LabelError(f"{p} and {seen[p.stem]} share the name {p.stem!r}; their masks would collide; rename one")
        seen[p.stem] = p


def _plan_split(split_dir: Path, class_map: dict[str, str], overwrite: bool) -> tuple[SplitReport, list[_Job]]:
    if (split_dir / COCO_JSON).is_file():
        return _plan_coco(split_dir, class_map, overwrite)
    if (split_dir / "labels").is_dir():
        return _plan_yolo(split_dir, class_map, overwrite)
    return SplitReport(split_dir, "masks"), []


def _plan_yolo(split_dir: Path, class_map: dict[str, str], overwrite: bool) -> tuple[SplitReport, list[_Job]]:
    report = SplitReport(split_dir, "yolo")
    images = _images_in(split_dir / "images")
    _check_stems(images)
    labels = {p.stem: p for p in sorted((split_dir / "labels").glob("*.txt"))}
    report.labels_without_images = [p for s, p in labels.items() if s not in {i.stem for i in images}]
    names, table = yolo_class_names(split_dir)[0], yolo_class_table(split_dir, class_map)
    stats, classes, jobs = RasterStats(), set(), []
    for image in images:
        label = labels.get(image.stem)
        if label is None:
            report.images_without_labels.append(image)
            continue
        width, height = image_size(image)
        shapes, used = _yolo_shapes(label, width, height, names, table, stats)
        classes |= used
        _add_job(report, jobs, image, split_dir / "masks" / f"{image.stem}.png", width, height, shapes, overwrite)
    _finish(report, stats, classes)
    return report, jobs


def _plan_coco(split_dir: Path, class_map: dict[str, str], overwrite: bool) -> tuple[SplitReport, list[_Job]]:
    report = SplitReport(split_dir, "coco")
    export = read_coco(split_dir / COCO_JSON, class_map)
    on_disk = {p.name: p for p in _images_in(split_dir)}
    report.images_without_labels = [p for n, p in on_disk.items() if n not in export.images]
    stats, jobs = RasterStats(), []
    listed = []
    for name, rec in sorted(export.images.items()):
        image = on_disk.get(name)
        if image is None:
            raise LabelError(f"{export.path}: image id {rec['id']} file {name!r} not found in {split_dir}")
        listed.append(image)
        width, height = image_size(image)
        if (width, height) != (int(rec["width"]), int(rec["height"])):
            raise LabelError(
                f"{export.path}: image id {rec['id']} is {rec['width']}x{rec['height']} in the json but {image} is {width}x{height}"
            )
        shapes = [s for ann in export.annotations[rec["id"]] for s in _coco_pixels(export.path, ann, width, height, stats)]
        _add_job(report, jobs, image, split_dir / "masks" / f"{image.stem}.png", width, height, shapes, overwrite)
    _check_stems(listed)
    _finish(report, stats, export.used_classes() - {IGNORE})
    return report, jobs


def _add_job(report: SplitReport, jobs: list[_Job], image: Path, mask: Path, width: int, height: int,
             shapes: list[_PixelShape], overwrite: bool) -> None:
    if mask.exists() and not overwrite:
        report.skipped += 1
        return
    jobs.append(_Job(image, mask, width, height, shapes))


def _finish(report: SplitReport, stats: RasterStats, classes: set[str]) -> None:
    named = sorted(c for c in classes if c != DATASET_CLASS)
    if len(named) > 1:
        raise LabelError(
            f"{report.split_dir}: labels of both classes {named}; a dataset root holds one class: "
            "split it, or drop one with --class-map NAME=ignore"
        )
    report.classes = named
    report.clipped, report.zero_width = stats.clipped, stats.zero_width


def _write_jobs(plans: list[tuple[SplitReport, list[_Job]]]) -> None:
    """Draw every mask into staging folders, then move all into masks/; on any failure remove the staging."""
    staged: list[tuple[Path, Path]] = []
    staging_dirs: list[Path] = []
    try:
        for report, jobs in plans:
            if not jobs:
                continue
            staging = Path(tempfile.mkdtemp(prefix=".masks-staging-", dir=report.split_dir))
            staging_dirs.append(staging)
            for job in progress_bar(jobs, desc=f"masks {report.split_dir.name}", disable=len(jobs) < 200):
                mask = _draw(job.shapes, job.width, job.height)
                report.empty += int(not mask.any())
                save_mask(mask, staging / job.mask.name)
                staged.append((staging / job.mask.name, job.mask))
        for src, dst in staged:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        for report, jobs in plans:
            report.written = len(jobs)
    finally:
        for d in staging_dirs:
            shutil.rmtree(d, ignore_errors=True)


def extract_masks(root_or_split: str | Path | Sequence[str | Path], class_map: dict[str, str] | None = None,
                  overwrite: bool = False) -> ExtractReport:
    """Write SPLIT/masks/NAME.png from YOLO labels or a COCO json for every split of one or more roots."""
    paths = [root_or_split] if isinstance(root_or_split, (str, Path)) else list(root_or_split)
    class_map = parse_class_map(class_map)
    plans = [_plan_split(split, class_map, overwrite) for p in paths for split in label_splits(Path(p))]
    _write_jobs(plans)
    report = ExtractReport([r for r, _ in plans])
    for r in report.splits:
        if r.images_without_labels:
            logger.warning("%s: %d images without labels got no mask", r.split_dir, len(r.images_without_labels))
    return report
