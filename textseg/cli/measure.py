"""`textseg measure MASK ... --class crack --out DIR [--photos DIR] [--marker MM]`: measure masks that already exist,
with the same code and report as `textseg inspect`; and the measuring options both commands share."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from textseg import CLASSES
from textseg.batch_io import check_output_stems, mask_inputs, unreadable_error
from textseg.inspection import MIN_AREA_SHARE, REPORT, InspectionReport, MeasureSettings, measure_masks, photos_for
from textseg.measure import DEFAULT_DICTIONARY, WIDTH_CLASSES, MarkerSpec, parse_width_classes
from textseg.measure.defects import MIN_AREA_PX
from textseg.prompts import normalise_class


def add_measure_arguments(parser: argparse.ArgumentParser) -> None:
    """Scale, gap closing, noise floor, width classes and overlay size (inspect, measure)."""
    d = MeasureSettings()
    parser.add_argument("--marker", type=float, default=None, metavar="MM",
                        help="side in mm of an ArUco marker on the wall: each photo showing it is measured in mm, "
                             "perspective included (photos without it: in px, or by --mm-per-px when given)")
    parser.add_argument("--marker-dict", default=DEFAULT_DICTIONARY, metavar="NAME",
                        help=f"the marker's ArUco dictionary (default {DEFAULT_DICTIONARY})")
    parser.add_argument("--mm-per-px", type=float, default=None,
                        help="millimetres per photo pixel, for photos taken head-on at a known distance: adds *_mm values and width classes")
    parser.add_argument("--no-visible", dest="visible", action="store_false",
                        help="skip reading each crack's length and width from the photo (the dark valley across it): "
                             "the mask's sizes only")
    parser.add_argument("--gap", type=int, default=d.gap_px, help=f"join parts of one defect broken by gaps up to this many pixels (default {d.gap_px})")
    parser.add_argument("--min-area", type=int, default=None,
                        help=f"ignore specks of fewer pixels (default: 1 px per {MIN_AREA_SHARE:,} of the photo's, at least {MIN_AREA_PX})")
    parser.add_argument("--width-classes", nargs="+", default=None, metavar="NAME=MM",
                        help="crack width classes by upper bound in mm, the last without one (default "
                             + " ".join(f"{n}={b:g}" if np.isfinite(b) else n for n, b in WIDTH_CLASSES) + ")")
    parser.add_argument("--overlay-max-side", type=int, default=d.overlay_max_side,
                        help=f"longer side of the labelled overlays in pixels (default {d.overlay_max_side})")


def settings_from(args: argparse.Namespace) -> MeasureSettings:
    """The measuring settings of parsed add_measure_arguments options."""
    classes = parse_width_classes(args.width_classes) if args.width_classes else WIDTH_CLASSES
    marker = MarkerSpec(args.marker, args.marker_dict) if args.marker is not None else None
    return MeasureSettings(args.mm_per_px, args.gap, args.min_area, classes, args.overlay_max_side, marker, args.visible)


def report_lines(report: InspectionReport, total: int) -> int:
    """Print one line per image (with where its scale came from) and a total; raise for unreadable files."""
    written = report.to_json()
    for img in written["images"]:
        s, scale = img["summary"], img["scale"]
        unit = "mm" if "total_length_mm" in s else "px"
        how = {"marker": f"; marker {scale.get('id')}, {scale.get('mm_per_px_at_marker', 0):.3f} mm/px there",
               "mm_per_px": "", None: f"; {scale['note']}, measured in px" if scale.get("note") else ""}[scale.get("source")]
        length = s.get(f"total_visible_length_{unit}", s[f"total_length_{unit}"])
        print(f"{Path(img['image']).name}: {s['count']} defects, total length {length:.1f} {unit}{how}")
    t = written["summary"]
    unscaled = f"; {len(t['images_without_scale'])} without a scale" if t.get("images_without_scale") else ""
    print(f"{report.cls}: {t['count']} defects in {t['images_with_defects']} of {t['images']} images{unscaled}; "
          f"report {report.out_dir / REPORT}")
    if report.failed:
        raise unreadable_error(report.failed, total)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `textseg measure`."""
    parser.add_argument("masks", nargs="+", type=Path, metavar="MASK", help="mask files (0/255 or 0/1) or directories of them")
    parser.add_argument("--class", dest="cls", required=True, help=f"what the masks show: {' | '.join(CLASSES)}")
    parser.add_argument("--out", required=True, type=Path, help="output directory for the report and overlays")
    parser.add_argument("--photos", type=Path, default=None, metavar="DIR",
                        help="the photos the masks are of ({stem}_mask.png or {stem}.png -> DIR/{stem}.jpg|png|...): "
                             "visible widths, the marker, overlays on the photo")
    add_measure_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Measure existing masks with the same code and report as `inspect`."""
    settings = settings_from(args)
    cls = normalise_class(args.cls)
    masks = check_output_stems(mask_inputs(args.masks))
    if settings.marker is not None and args.photos is None:
        raise ValueError("--marker is read from the photos: give them with --photos DIR")
    photos = photos_for(masks, args.photos) if args.photos is not None else None
    return report_lines(measure_masks(masks, cls, args.out, settings, photos), len(masks))
