"""Inspection: every defect in a set of photos, found with a prompt and measured (count, length, width).

    textseg inspect photos/ --ckpt RUN/best.pt --prompt "segment crack" --out DIR --tile --mm-per-px 0.25
    textseg measure masks/*.png --class crack --out DIR          # masks that already exist, same measurements

Both write DIR/report.json (settings, per image its defects and summary, unreadable files under "failed"),
DIR/defects.csv (one row per defect), per image {name}_inspect.png (the photo, or the mask, with each defect
boxed, numbered and labelled with its length and width) and DIR/summary.png (width histogram, length per
photo); `inspect` also writes {name}_mask.png at the photo's full size. Every file is written atomically.
Argument errors stop the command before any work; an unreadable image gets no files, the others are
written, and the command then exits with status 1 naming every unreadable file.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from textseg import CLASSES
from textseg.batch_io import OUTPUTS, background_workers, in_background, output_path, predict_files
from textseg.data.images import ImageReadError, is_image_file, load_image, load_mask_values, save_mask_with, save_rgb
from textseg.files import atomic_path, save_json
from textseg.drawing import labelled_overlay
from textseg.measure import (WIDTH_CLASSES, Defect, MarkerSpec, Plane, check_binary, check_mm_per_px, find_plane,
                             measure_mask, summarize)
from textseg.measure.defects import GAP_PX, MIN_AREA_PX
from textseg.measure.plane import hide_marker, marker_region
from textseg.predictor import Prediction, Segmenter, Tiling
from textseg.progress import progress_bar
from textseg.prompts import NONE, PromptMeaning, normalise_class, prompt_class
from textseg.viz import inspection_summary_figure

logger = logging.getLogger(__name__)

REPORT = "report.json"
TABLE = "defects.csv"
SUMMARY = "summary.png"
MAX_LABELS = 25  # an overlay with more size labels than this is unreadable; the table has them all
MIN_AREA_SHARE = 100_000  # the smallest defect kept by default: MIN_AREA_PX, and one pixel per this many of the photo's (40 px at 4 MP, 120 px at 12 MP)


@dataclass(frozen=True)
class MeasureSettings:
    """How masks are turned into defects and shown: scale (a marker in each photo, or one mm_per_px), gap closing,
    noise floor, width classes, overlay size."""

    mm_per_px: float | None = None
    gap_px: int = GAP_PX
    min_area_px: int | None = None  # None: by the photo's size (min_area)
    width_classes: tuple[tuple[str, float], ...] = WIDTH_CLASSES
    overlay_max_side: int = 2048
    marker: MarkerSpec | None = None  # scale and perspective from this marker where a photo shows it
    visible: bool = True  # read each defect's visible length and width from its photo, where the photo is at hand

    def __post_init__(self) -> None:
        check_mm_per_px(self.mm_per_px)
        if self.gap_px < 0 or (self.min_area_px or 0) < 0:
            raise ValueError(f"--gap and --min-area must be >= 0, got {self.gap_px} and {self.min_area_px}")
        if self.overlay_max_side < 64:
            raise ValueError(f"--overlay-max-side must be at least 64 pixels, got {self.overlay_max_side}")

    def min_area(self, shape: tuple[int, ...]) -> int:
        """The smallest defect (pixels) kept in a photo of this shape: as set, else one pixel per MIN_AREA_SHARE of
        the photo and at least MIN_AREA_PX, so a speck counts alike on a small and on a 12 MP photo."""
        if self.min_area_px is not None:
            return int(self.min_area_px)
        return max(MIN_AREA_PX, round(shape[0] * shape[1] / MIN_AREA_SHARE))

    @property
    def scaled(self) -> bool:
        """Whether any photo can be measured in millimetres."""
        return self.mm_per_px is not None or self.marker is not None

    def plane(self, photo: np.ndarray | None) -> Plane:
        """The wall plane of one photo: through its marker where found, else the given scale, else pixels."""
        gray = None
        if self.marker is not None and photo is not None:
            gray = photo if photo.ndim == 2 else cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
        return find_plane(gray, self.marker, self.mm_per_px)

    def to_json(self) -> dict[str, Any]:
        return {"mm_per_px": self.mm_per_px, "marker": None if self.marker is None else self.marker.to_json(),
                "visible": self.visible, "gap_px": self.gap_px, "min_area_px": self.min_area_px,
                "width_classes": [[name, bound if np.isfinite(bound) else None] for name, bound in self.width_classes]}


def measure_record(
    mask: np.ndarray, cls: str, settings: MeasureSettings, photo: np.ndarray | None = None, plane: Plane | None = None
) -> tuple[list[Defect], dict[str, Any], Plane]:
    """The defects of one mask (bool, full size), its JSON record (size, scale, defects, summary) and its plane;
    with the photo, the marker is looked for in it (unless its `plane` is given) and the visible widths are read
    from it. The marker's own square is never a defect."""
    plane = plane if plane is not None else settings.plane(photo)
    if plane.marker is not None:
        mask = mask & ~marker_region(mask.shape, plane.marker)
    defects = measure_mask(mask, cls, gap_px=settings.gap_px, min_area_px=settings.min_area(mask.shape), plane=plane,
                           photo=photo if settings.visible else None)
    record = {
        "height": int(mask.shape[0]),
        "width": int(mask.shape[1]),
        "scale": plane.source,
        "defects": [d.to_dict(settings.width_classes) for d in defects],
        "summary": summarize(defects, settings.width_classes, scaled=plane.unit == "mm"),
    }
    return defects, record, plane


def label_text(defect: dict[str, Any]) -> str:
    """"#3  L 412 mm  W 0.45 mm" for a defect's dict: millimetres when it is scaled, and the length and width the
    photo shows when it was read (else the mask's)."""
    unit = "mm" if "length_mm" in defect else "px"
    length = defect.get(f"visible_length_{unit}") or defect[f"length_{unit}"]
    width = defect.get(f"visible_max_width_{unit}") or defect[f"max_width_{unit}"]
    return f"#{defect['id']}  L {length:.0f} {unit}  W {width:.2f} {unit}" if unit == "mm" else \
        f"#{defect['id']}  L {length:.0f} px  W {width:.1f} px"


def write_overlay(background: np.ndarray, mask: np.ndarray, record: dict[str, Any], path: Path, settings: MeasureSettings,
                  plane: Plane | None = None) -> None:
    """The labelled overlay of one image's defects: sizes on the largest MAX_LABELS, numbers only on the rest; the
    marker the scale came from outlined and named."""
    labels = [(tuple(d["bbox"]), label_text(d) if i < MAX_LABELS else f"#{d['id']}")
              for i, d in enumerate(record["defects"])]
    outline = None
    if plane is not None and plane.marker is not None:
        outline = (plane.marker.corners, f"marker {plane.marker.id}: {plane.source['side_mm']:g} mm")
    save_rgb(labelled_overlay(background, mask, labels, settings.overlay_max_side, outline), path)


class InspectionReport:
    """Collects per-image records, then writes report.json, defects.csv and summary.png into one folder."""

    def __init__(self, out_dir: Path, cls: str, settings: MeasureSettings, **context: Any) -> None:
        self.out_dir, self.cls, self.settings, self.context = Path(out_dir), cls, settings, context
        self.images: list[dict[str, Any]] = []
        self.defects: list[Defect] = []
        self.failed: list[str] = []

    def add(self, source: Path, defects: list[Defect], record: dict[str, Any], files: dict[str, str]) -> None:
        self.images.append({"image": str(source), **files, **record})
        self.defects += defects

    def unscaled(self) -> list[str]:
        """Names of the photos measured in pixels although a scale was asked for (no marker found in them)."""
        if not self.settings.scaled:
            return []
        return [Path(img["image"]).name for img in self.images if img["scale"].get("source") is None]

    def to_json(self) -> dict[str, Any]:
        scaled = [d for d in self.defects if d.length_mm is not None]
        total = {
            "images": len(self.images),
            "images_with_defects": sum(1 for img in self.images if img["defects"]),
            **summarize(self.defects, self.settings.width_classes, scaled=False),
        }
        if self.settings.scaled:
            # Millimetre totals cover the photos that have a scale; the others are named.
            in_mm = summarize(scaled, self.settings.width_classes, scaled=True)
            total.update({k: v for k, v in in_mm.items() if k.endswith(("_mm", "_mm2")) or k == "count_by_width_class"})
            total["images_in_mm"] = len(self.images) - len(self.unscaled())
            total["images_without_scale"] = self.unscaled()
        return {"class": self.cls, **self.context, **self.settings.to_json(), "images": self.images,
                "failed": self.failed, "summary": total}

    def write(self) -> dict[str, Any]:
        """Write the three folder-level files; returns the report."""
        report = self.to_json()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        save_json(report, self.out_dir / REPORT)
        self._write_table()
        plt.close(self.summary_figure(self.out_dir / SUMMARY))
        return report

    def summary_figure(self, path: str | Path | None = None) -> Figure:
        """Width histogram (with the width classes when in mm) and total length per photo; in mm when every photo
        has a scale, the widths being those a crack is classed by (the photo's where read)."""
        in_mm = bool(self.images) and self.settings.scaled and not self.unscaled()
        unit = "mm" if in_mm else "px"
        widths = [_shown(d, "max_width", unit) for img in self.images for d in img["defects"]]
        lengths = {Path(img["image"]).name: sum(_shown(d, "length", unit) for d in img["defects"]) for img in self.images}
        bounds = self.settings.width_classes if in_mm and self.cls == "crack" else ()
        return inspection_summary_figure(widths, lengths, unit, path, bounds)

    def _write_table(self) -> None:
        rows = [{"image": img["image"], **_flat(d)} for img in self.images for d in img["defects"]]
        columns = ["image", *(_flat_keys(self.images) or ["id", "class"])]
        with atomic_path(self.out_dir / TABLE) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(rows)


def _shown(defect: dict[str, Any], size: str, unit: str) -> float:
    """A defect's length or max width as shown: what the photo shows where it was read, else the mask's."""
    seen = defect.get(f"visible_{size}_{unit}")
    return float(seen if seen is not None else defect[f"{size}_{unit}"])


def _flat(defect: dict[str, Any]) -> dict[str, Any]:
    """A defect as one CSV row: bbox and centroid spread over their own columns."""
    row = {k: v for k, v in defect.items() if k not in ("bbox", "centroid")}
    row.update(zip(("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"), defect["bbox"]))
    row.update(zip(("centroid_x", "centroid_y"), defect["centroid"]))
    return row


def _flat_keys(images: Sequence[dict[str, Any]]) -> list[str]:
    """CSV columns: every defect's keys, in the order they first appear (photos without a scale lack the mm ones)."""
    keys: dict[str, None] = {}
    for img in images:
        for d in img["defects"]:
            keys.update(dict.fromkeys(_flat(d)))
    return list(keys)


# ----------------------------------------------------------------------------------------- CLI


def measured_class(prompt: str, cls: str | None = None, meaning: PromptMeaning | None = None) -> str:
    """The class to measure as: the one given, else the one the model takes the prompt to mean (`meaning`), else the
    one its words name; ValueError when none says."""
    if cls:
        return normalise_class(cls)
    named = meaning.cls if meaning is not None else prompt_class(prompt)
    if named is None or named == NONE:
        read = f" (read as {meaning.describe()})" if meaning is not None else ""
        raise ValueError(f"prompt {prompt!r} does not name one class{read}; say which with --class {'|'.join(CLASSES)}")
    return named


def inspect_photos(
    seg: Segmenter, photos: Sequence[Path], prompt: str, out_dir: str | Path, cls: str | None = None,
    settings: MeasureSettings = MeasureSettings(), threshold: float | None = None, tiling: Tiling | None = Tiling(),
    batch_size: int = 8, checkpoint: str | Path | None = None,
) -> InspectionReport:
    """Predict each photo (tiled by default), measure its defects, write its mask and labelled overlay, then
    the folder's report.json, defects.csv and summary.png; unreadable photos are listed in report.failed.
    `threshold` None: the prompt's default (textseg.prompts.threshold_for)."""
    cls = measured_class(prompt, cls, seg.prompt_meaning(prompt))
    threshold = seg.threshold(prompt, threshold)
    context = {"prompt": prompt, "checkpoint": str(checkpoint or seg.checkpoint), "threshold": threshold,
               "tiling": None if tiling is None else {"size": tiling.size, "overlap": tiling.overlap}}
    report = InspectionReport(Path(out_dir), cls, settings, **context)
    planes: dict[Path, Plane] = {}

    def model_view(img: Path, rgb: np.ndarray) -> np.ndarray:
        # The marker is found before the model runs, so that the model is not shown it.
        planes[img] = settings.plane(rgb)
        return rgb if planes[img].marker is None else hide_marker(rgb, planes[img].marker)

    def measure_and_write(img: Path, rgb: np.ndarray, pred: Prediction) -> tuple:
        return img, *_inspect_one(img, rgb, pred, cls, settings, report.out_dir, planes.pop(img, None))

    view = model_view if settings.marker is not None else None
    results = predict_files(seg, list(photos), prompt, threshold, batch_size, tiling, report.failed, view)
    for img, defects, record, files in in_background(measure_and_write, results, background_workers(tiling)):
        report.add(img, defects, record, files)
    report.write()
    return report


def _inspect_one(img: Path, rgb: np.ndarray, pred: Prediction, cls: str, settings: MeasureSettings,
                 out_dir: Path, plane: Plane | None = None) -> tuple[list[Defect], dict[str, Any], dict[str, str]]:
    """Measure one prediction and write its mask and labelled overlay (both or neither); returns the defects,
    the image's record and its files, for the report."""
    if plane is not None and plane.marker is not None:
        pred.mask &= ~marker_region(pred.mask.shape, plane.marker)
    defects, record, plane = measure_record(pred.mask, cls, settings, rgb, plane)
    mask_path, overlay_path = output_path(img, out_dir, "mask"), output_path(img, out_dir, "inspect")
    save_mask_with(pred.mask, mask_path, lambda: write_overlay(rgb, pred.mask, record, overlay_path, settings, plane))
    return defects, {**record, "max_prob": float(pred.prob.max())}, {"mask": mask_path.name, "overlay": overlay_path.name}


def measure_masks(
    masks: Sequence[Path], cls: str, out_dir: str | Path, settings: MeasureSettings = MeasureSettings(),
    photos: Sequence[Path] | None = None,
) -> InspectionReport:
    """Measure mask files (with their photos, one per mask, when given: the marker and the visible widths) and
    write the report, table, summary and an overlay per mask, as `inspect_photos` does; unreadable masks or photos,
    and photos of another size than their mask, are listed in report.failed."""
    report = InspectionReport(Path(out_dir), normalise_class(cls), settings)
    pairs = list(zip(masks, photos if photos is not None else [None] * len(masks)))
    for path, photo_path in progress_bar(pairs, desc="measure", unit="mask", disable=len(masks) < 2):
        try:
            mask = read_binary_mask(path)
            photo = None if photo_path is None else _read_photo(photo_path, mask.shape)
        except ImageReadError as exc:
            report.failed.append(str(exc))
            continue
        defects, record, plane = measure_record(mask, report.cls, settings, photo)
        overlay_path = output_path(path, report.out_dir, "inspect")
        background = photo if photo is not None else np.repeat(np.where(mask, 200, 40).astype(np.uint8)[..., None], 3, axis=2)
        write_overlay(background, mask, record, overlay_path, settings, plane)
        files = {"overlay": overlay_path.name, **({"photo": str(photo_path)} if photo_path is not None else {})}
        report.add(path, defects, record, files)
    report.write()
    return report


def photos_for(masks: Sequence[Path], folder: Path) -> list[Path]:
    """Each mask's photo in `folder`, by stem ({stem}_mask.png as `textseg predict` names masks, or {stem}.png);
    FileNotFoundError naming every mask without one, before anything is measured."""
    if not folder.is_dir():
        raise FileNotFoundError(f"--photos {folder}: not a directory")
    by_stem: dict[str, Path] = {}
    for photo in sorted(folder.iterdir()):
        if photo.is_file() and is_image_file(photo):
            by_stem.setdefault(photo.stem, photo)
    found, missing = [], []
    for mask in masks:
        suffix = Path(OUTPUTS["mask"]).stem  # "_mask": masks named as `textseg predict` names them
        stem = mask.stem[: -len(suffix)] if mask.stem.endswith(suffix) else mask.stem
        (found.append(by_stem[stem]) if stem in by_stem else missing.append(mask.name))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise FileNotFoundError(f"no photo in {folder} for {len(missing)} mask(s): {shown} "
                                f"(a mask {{stem}}_mask.png needs {folder}/{{stem}}.jpg or another image file)")
    return found


def _read_photo(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A mask's photo, upright RGB; ImageReadError when unreadable or not the mask's size."""
    photo = load_image(path, upright=True)
    if photo.shape[:2] != tuple(shape):
        raise ImageReadError(f"{path}: photo is {photo.shape[1]}x{photo.shape[0]} px but its mask is {shape[1]}x{shape[0]}")
    return photo


def read_binary_mask(path: Path) -> np.ndarray:
    """A mask file as bool (H, W); ImageReadError for an unreadable file or one that is not binary."""
    try:
        return check_binary(load_mask_values(path), str(path))
    except ValueError as exc:
        raise ImageReadError(str(exc)) from exc


def defects_markdown(report: InspectionReport, top: int = 15) -> str:
    """The longest defects of a report as a markdown table, with the folder's totals above it; millimetres where a
    photo has a scale, the photo's own length and width where it was read."""
    data = report.to_json()
    rows = sorted(((Path(img["image"]).name, d) for img in data["images"] for d in img["defects"]),
                  key=lambda r: -r[1]["length_px"])[:top]
    t = data["summary"]
    unreadable = f"; {len(data['failed'])} unreadable" if data["failed"] else ""
    unscaled = f"; {len(t['images_without_scale'])} without a scale" if t.get("images_without_scale") else ""
    read = any(any(k.startswith("visible_") for k in d) for _, d in rows)
    columns = (["photo", "#", "length", "mask width (mean / max)"] + (["visible width (mean / max)"] if read else [])
               + ["area", "width class"])
    lines = [f"**{t['count']} {report.cls} defects in {t['images_with_defects']} of {t['images']} photos**"
             f"{unreadable}{unscaled}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for name, d in rows:
        unit = "mm" if "length_mm" in d else "px"
        digits = 2 if unit == "mm" else 1
        length = f"{_shown(d, 'length', unit):.{digits}f} {unit}"
        mask_w = f"{d[f'mean_width_{unit}']:.{digits}f} / {d[f'max_width_{unit}']:.{digits}f} {unit}"
        seen = [d.get(f"visible_width_{unit}"), d.get(f"visible_max_width_{unit}")]
        visible = [f"{seen[0]:.{digits}f} / {seen[1]:.{digits}f} {unit}" if None not in seen else "not seen"] if read else []
        area = f"{d['area_mm2']:.1f} mm²" if unit == "mm" else f"{d['area_px']} px"
        width_class = f"{d['width_class']} ({d['width_from']})" if d.get("width_class") else "-"
        lines.append("| " + " | ".join([name[:40], str(d["id"]), length, mask_w, *visible, area, width_class]) + " |")
    if not rows:
        lines.append("| (no defects found) |" + " |" * (len(columns) - 1))
    return "\n".join(lines)
