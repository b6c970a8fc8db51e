"""`textseg extract-masks ROOT ...`: masks/*.png from YOLO labels or a COCO export."""

from __future__ import annotations

import argparse
from pathlib import Path

from textseg import CLASSES
from textseg.data.labels import extract_masks, parse_class_map


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `textseg extract-masks`."""
    parser.add_argument("roots", nargs="+", type=Path, metavar="ROOT", help="dataset root (with train/valid/test) or split folder")
    parser.add_argument("--class-map", action="append", default=[], metavar="NAME=CLASS",
                        help=f"map a COCO category / YOLO class (name or id) to one of {list(CLASSES)} or 'ignore'; repeatable")
    parser.add_argument("--overwrite", action="store_true", help="replace existing masks (default: keep them)")


def run(args: argparse.Namespace) -> int:
    """Run `textseg extract-masks` and print one summary line per split."""
    report = extract_masks(args.roots, parse_class_map(args.class_map), overwrite=args.overwrite)
    print(report.summary())
    return 0
