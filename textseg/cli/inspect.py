"""`textseg inspect PHOTO ... --prompt P --ckpt CK --out DIR [--tile] [--marker MM]`: segment each photo and measure
each defect (count, length, width), with a report, a table, overlays and a summary plot."""

from __future__ import annotations

import argparse
from pathlib import Path

from textseg.cli.common import add_prediction_arguments, prepare_prediction, unknown_prompt_note
from textseg.cli.measure import add_measure_arguments, report_lines, settings_from
from textseg.inspection import inspect_photos, measured_class
from textseg.prompts import normalise_class


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `textseg inspect`."""
    parser.add_argument("images", nargs="+", type=Path, metavar="IMG", help="photos or directories of photos")
    parser.add_argument("--out", required=True, type=Path, help="output directory for the report, masks and overlays")
    parser.add_argument("--class", dest="cls", default=None, help="class to measure as (default: the one the prompt names)")
    add_prediction_arguments(parser)
    add_measure_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Predict, measure and report every photo; unreadable photos are reported after the others are written."""
    settings = settings_from(args)
    if args.cls:
        normalise_class(args.cls)  # a wrong --class fails before the model loads
    seg, prompt, images, tiling = prepare_prediction(args)
    meaning = seg.prompt_meaning(prompt)
    cls = measured_class(prompt, args.cls, meaning)
    if (note := unknown_prompt_note(prompt, meaning)) is not None:
        print(note)
    report = inspect_photos(seg, images, prompt, args.out, cls, settings, args.threshold, tiling, args.batch_size, args.ckpt)
    return report_lines(report, len(images))
