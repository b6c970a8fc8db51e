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

import argparse
import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from textseg import CLASSES
from textseg.data.images import ImageReadError, atomic_path, load_mask_values, save_json, save_mask_with, save_rgb
from textseg.measure import (
    WIDTH_CLASSES,
    Defect,
    check_binary,
    check_mm_per_px,
    measure_mask,
    parse_width_classes,
    summarize,
)
from textseg.predict import (
    Prediction,
    Segmenter,
    Tiling,
    add_prediction_arguments,
    background_workers,
    check_output_stems,
    expand_inputs,
    in_background,
    prepare_prediction,
    predict_files,
    unknown_prompt_note,
    unreadable_error,
)
from textseg.progress import progress_bar
from textseg.prompts import NONE, PromptMeaning, normalise_class, prompt_class
from textseg.drawing import labelled_overlay
from textseg.viz import inspection_summary_figure

logger = logging.getLogger(__name__)

REPORT = "report.json"
TABLE = "defects.csv"
SUMMARY = "summary.png"
MAX_LABELS = 25  # an overlay with more size labels than this is unreadable; the table has them all


@dataclass(frozen=True)
class MeasureSettings:
    """How masks are turned into defects and shown: scale, gap closing, noise floor, width classes, overlay size."""

    mm_per_px: float | None = None
    gap_px: int = 2
    min_area_px: int = 16
    width_classes: tuple[tuple[str, float], ...] = WIDTH_CLASSES
    overlay_max_side: int = 2048

    def __post_init__(self) -> None:
        check_mm_per_px(self.mm_per_px)
        if self.gap_px < 0 or self.min_area_px < 0:
            raise ValueError(f"--gap and --min-area must be >= 0, got {self.gap_px} and {self.min_area_px}")
        if self.overlay_max_side < 64:
            raise ValueError(f"--overlay-max-side must be at least 64 pixels, got {self.overlay_max_side}")

    @property
    def unit(self) -> str:
        return "mm" if self.mm_per_px else "px"

    def to_json(self) -> dict[str, Any]:
        return {"mm_per_px": self.mm_per_px, "gap_px": self.gap_px, "min_area_px": self.min_area_px,
                "width_classes": [[name, bound if np.isfinite(bound) else None] for name, bound in self.width_classes]}


def measure_record(mask: np.ndarray, cls: str, settings: MeasureSettings) -> tuple[list[Defect], dict[str, Any]]:
    """The defects of one mask (bool, full size) and its JSON record: size, defects, summary."""
    defects = measure_mask(mask, cls, gap_px=settings.gap_px, min_area_px=settings.min_area_px)
    record = {
        "height": int(mask.shape[0]),
        "width": int(mask.shape[1]),
        "defects": [d.to_dict(settings.mm_per_px, settings.width_classes) for d in defects],
        "summary": summarize(defects, settings.mm_per_px, settings.width_classes),
    }
    return defects, record


def label_text(defect: dict[str, Any], unit: str) -> str:
    """"#3  L 412 px  W 3.1 px" (millimetres when the defect is scaled)."""
    if unit == "mm":
        return f"#{defect['id']}  L {defect['length_mm']:.0f} mm  W {defect['max_width_mm']:.2f} mm"
    return f"#{defect['id']}  L {defect['length_px']:.0f} px  W {defect['max_width_px']:.1f} px"


def write_overlay(background: np.ndarray, mask: np.ndarray, record: dict[str, Any], path: Path, settings: MeasureSettings) -> None:
    """The labelled overlay of one image's defects: sizes on the largest MAX_LABELS, numbers only on the rest."""
    labels = [(tuple(d["bbox"]), label_text(d, settings.unit) if i < MAX_LABELS else f"#{d['id']}")
              for i, d in enumerate(record["defects"])]
    save_rgb(labelled_overlay(background, mask, labels, settings.overlay_max_side), path)


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

    def to_json(self) -> dict[str, Any]:
        total = {
            "images": len(self.images),
            "images_with_defects": sum(1 for img in self.images if img["defects"]),
            **summarize(self.defects, self.settings.mm_per_px, self.settings.width_classes),
        }
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
        """Width histogram (with the width classes when scaled) and total length per photo."""
        scale = self.settings.mm_per_px or 1.0
        widths = [d["max_width_px"] * scale for img in self.images for d in img["defects"]]
        lengths = {Path(img["image"]).name: sum(d["length_px"] for d in img["defects"]) * scale for img in self.images}
        bounds = self.settings.width_classes if self.settings.mm_per_px and self.cls == "crack" else ()
        return inspection_summary_figure(widths, lengths, self.settings.unit, path, bounds)

    def _write_table(self) -> None:
        rows = [{"image": img["image"], **_flat(d)} for img in self.images for d in img["defects"]]
        columns = ["image", *(_flat_keys(self.images) or ["id", "class"])]
        with atomic_path(self.out_dir / TABLE) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)


def _flat(defect: dict[str, Any]) -> dict[str, Any]:
    """A defect as one CSV row: bbox and centroid spread over their own columns."""
    row = {k: v for k, v in defect.items() if k not in ("bbox", "centroid")}
    row.update(zip(("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"), defect["bbox"]))
    row.update(zip(("centroid_x", "centroid_y"), defect["centroid"]))
    return row


def _flat_keys(images: Sequence[dict[str, Any]]) -> list[str]:
    """CSV columns in the order of the first defect's keys."""
    first = next((d for img in images for d in img["defects"]), None)
    return list(_flat(first)) if first is not None else []


# ----------------------------------------------------------------------------------------- CLI


def _add_measure_arguments(parser: argparse.ArgumentParser) -> None:
    """Scale, gap closing, noise floor, width classes and overlay size (inspect, measure)."""
    d = MeasureSettings()
    parser.add_argument("--mm-per-px", type=float, default=None, help="millimetres per photo pixel: adds *_mm values and width classes")
    parser.add_argument("--gap", type=int, default=d.gap_px, help=f"join parts of one defect broken by gaps up to this many pixels (default {d.gap_px})")
    parser.add_argument("--min-area", type=int, default=d.min_area_px, help=f"ignore specks of fewer pixels (default {d.min_area_px})")
    parser.add_argument("--width-classes", nargs="+", default=None, metavar="NAME=MM",
                        help="crack width classes by upper bound in mm, the last without one (default "
                             + " ".join(f"{n}={b:g}" if np.isfinite(b) else n for n, b in WIDTH_CLASSES) + ")")
    parser.add_argument("--overlay-max-side", type=int, default=d.overlay_max_side,
                        help=f"longer side of the labelled overlays in pixels (default {d.overlay_max_side})")


def _settings(args: argparse.Namespace) -> MeasureSettings:
    classes = parse_width_classes(args.width_classes) if args.width_classes else WIDTH_CLASSES
    return MeasureSettings(args.mm_per_px, args.gap, args.min_area, classes, args.overlay_max_side)


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `textseg inspect`."""
    parser.add_argument("images", nargs="+", type=Path, metavar="IMG", help="photos or directories of photos")
    parser.add_argument("--out", required=True, type=Path, help="output directory for the report, masks and overlays")
    parser.add_argument("--class", dest="cls", default=None, help="class to measure as (default: the one the prompt names)")
    add_prediction_arguments(parser)
    _add_measure_arguments(parser)


def run_cli(args: argparse.Namespace) -> int:
    """Predict, measure and report every photo; unreadable photos are reported after the others are written."""
    settings = _settings(args)
    if args.cls:
        normalise_class(args.cls)  # a wrong --class fails before the model loads
    seg, prompt, images, tiling = prepare_prediction(args)
    meaning = seg.prompt_meaning(prompt)
    cls = measured_class(prompt, args.cls, meaning)
    if (note := unknown_prompt_note(prompt, meaning)) is not None:
        print(note)
    report = inspect_photos(seg, images, prompt, args.out, cls, settings, args.threshold, tiling, args.batch_size, args.ckpt)
    return _finish(report, len(images))


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

    def measure_and_write(img: Path, rgb: np.ndarray, pred: Prediction) -> tuple:
        return img, *_inspect_one(img, rgb, pred, cls, settings, report.out_dir)

    results = predict_files(seg, list(photos), prompt, threshold, batch_size, tiling, report.failed)
    for img, defects, record, files in in_background(measure_and_write, results, background_workers(tiling)):
        report.add(img, defects, record, files)
    report.write()
    return report


def _inspect_one(img: Path, rgb: np.ndarray, pred: Prediction, cls: str, settings: MeasureSettings,
                 out_dir: Path) -> tuple[list[Defect], dict[str, Any], dict[str, str]]:
    """Measure one prediction and write its mask and labelled overlay (both or neither); returns the defects,
    the image's record and its files, for the report."""
    defects, record = measure_record(pred.mask, cls, settings)
    mask_path, overlay_path = out_dir / f"{img.stem}_mask.png", out_dir / f"{img.stem}_inspect.png"
    save_mask_with(pred.mask, mask_path, lambda: write_overlay(rgb, pred.mask, record, overlay_path, settings))
    return defects, {**record, "max_prob": float(pred.prob.max())}, {"mask": mask_path.name, "overlay": overlay_path.name}


def _finish(report: InspectionReport, total: int) -> int:
    """Print one line per image and a total; raise for unreadable files."""
    written = report.to_json()
    unit = report.settings.unit
    for img in written["images"]:
        s = img["summary"]
        length = s.get(f"total_length_{unit}", s["total_length_px"])
        print(f"{Path(img['image']).name}: {s['count']} defects, total length {length:.1f} {unit}")
    t = written["summary"]
    print(f"{report.cls}: {t['count']} defects in {t['images_with_defects']} of {t['images']} images; "
          f"report {report.out_dir / REPORT}")
    if report.failed:
        raise unreadable_error(report.failed, total)
    return 0


def add_measure_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `textseg measure`."""
    parser.add_argument("masks", nargs="+", type=Path, metavar="MASK", help="mask files (0/255 or 0/1) or directories of them")
    parser.add_argument("--class", dest="cls", required=True, help=f"what the masks show: {' | '.join(CLASSES)}")
    parser.add_argument("--out", required=True, type=Path, help="output directory for the report and overlays")
    _add_measure_arguments(parser)


def run_measure_cli(args: argparse.Namespace) -> int:
    """Measure existing masks with the same code and report as `inspect`."""
    settings = _settings(args)
    cls = normalise_class(args.cls)
    masks = check_output_stems(expand_inputs(args.masks))
    report = InspectionReport(args.out, cls, settings)
    for path in progress_bar(masks, desc="measure", unit="mask", disable=len(masks) < 2):
        try:
            mask = read_binary_mask(path)
        except ImageReadError as exc:
            report.failed.append(str(exc))
            continue
        defects, record = measure_record(mask, cls, settings)
        overlay_path = report.out_dir / f"{path.stem}_inspect.png"
        background = np.repeat(np.where(mask, 200, 40).astype(np.uint8)[..., None], 3, axis=2)
        write_overlay(background, mask, record, overlay_path, settings)
        report.add(path, defects, record, {"overlay": overlay_path.name})
    report.write()
    return _finish(report, len(masks))


def read_binary_mask(path: Path) -> np.ndarray:
    """A mask file as bool (H, W); ImageReadError for an unreadable file or one that is not binary."""
    try:
        return check_binary(load_mask_values(path), str(path))
    except ValueError as exc:
        raise ImageReadError(str(exc)) from exc


def defects_markdown(report: InspectionReport, top: int = 15) -> str:
    """The longest defects of a report as a markdown table, with the folder's totals above it."""
    data = report.to_json()
    scaled = report.settings.unit == "mm"
    classed = scaled and report.cls == "crack"
    rows = sorted(((Path(img["image"]).name, d) for img in data["images"] for d in img["defects"]),
                  key=lambda r: -r[1]["length_px"])[:top]
    t = data["summary"]
    unreadable = f"; {len(data['failed'])} unreadable" if data["failed"] else ""
    columns = ["photo", "#", "length", "mean width", "max width", "area"] + (["width class"] if classed else [])
    lines = [f"**{t['count']} {report.cls} defects in {t['images_with_defects']} of {t['images']} photos**{unreadable}", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for name, d in rows:
        sizes = [f"{d[k + '_mm']:.2f} mm" if scaled else f"{d[k + '_px']:.1f} px" for k in ("length", "mean_width", "max_width")]
        area = f"{d['area_mm2']:.1f} mm²" if scaled else f"{d['area_px']} px"
        cells = [name[:40], str(d["id"]), *sizes, area] + ([str(d.get("width_class"))] if classed else [])
        lines.append("| " + " | ".join(cells) + " |")
    if not rows:
        lines.append("| (no defects found) |" + " |" * (len(columns) - 1))
    return "\n".join(lines)
