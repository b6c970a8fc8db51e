"""`textseg evaluate --ckpt CK --data CLASS=ROOT ... --split valid --out DIR`: metrics per class and prompt."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from textseg.cli.common import add_segmenter_arguments
from textseg.data.datasets import add_data_arguments, parse_data_specs
from textseg.evaluate import DEFAULT_THRESHOLDS, evaluate, markdown_table, threshold_grid
from textseg.predictor import Segmenter
from textseg.prompts import canonical_prompt, thresholds_text

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `textseg evaluate`."""
    parser.add_argument("--ckpt", required=True, type=Path, help="checkpoint written by textseg train (RUN/best.pt)")
    add_data_arguments(parser)
    parser.add_argument("--split", default="valid", help="train | valid | test ('valid' of a root without one is the held-back part of train; default valid)")
    parser.add_argument("--out", type=Path, default=None, help="directory for report.json and report.md")
    parser.add_argument("--threshold", type=float, default=None,
                        help=f"threshold of the headline metrics (default: each class's, {thresholds_text()})")
    parser.add_argument("--thresholds", default=",".join(f"{t:g}" for t in DEFAULT_THRESHOLDS), help="sweep, comma-separated (default %(default)s)")
    parser.add_argument("--all-negative-prompts", action="store_true", help="try several prompts of the other class, not only its canonical one")
    parser.add_argument("--canonical-only", action="store_true", help="evaluate only each class's canonical prompt (faster)")
    parser.add_argument("--batch-size", type=int, default=8, help="images (and prompt pairs) per batch (default 8)")
    add_segmenter_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Evaluate a checkpoint and print the markdown table."""
    thresholds = _parse_thresholds(args.thresholds)
    threshold_grid(thresholds, [] if args.threshold is None else [args.threshold])
    segmenter = Segmenter.from_checkpoint(args.ckpt, args.device, args.visual_weights, args.text_weights)
    roots = _cli_roots(args, segmenter)
    report = evaluate(
        segmenter, roots, args.split, args.out, thresholds=thresholds, batch_size=args.batch_size,
        threshold=args.threshold, all_negative_prompts=args.all_negative_prompts,
        prompts={cls: [canonical_prompt(cls)] for cls in roots} if args.canonical_only else None,
    )
    print(markdown_table(report), end="")
    if args.out is not None:
        print(f"wrote {args.out / 'report.json'} and {args.out / 'report.md'}")
    return 0


def _parse_thresholds(text: str) -> list[float]:
    """"0.1,0.3,0.5" -> [0.1, 0.3, 0.5]."""
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise ValueError(f"--thresholds {text!r}: give comma-separated numbers in [0, 1]") from exc


def _cli_roots(args: argparse.Namespace, segmenter: Segmenter) -> dict[str, Path]:
    """Roots from --data/--cracks-path/--drywall-path, or else the checkpoint's own data config."""
    if args.data or args.cracks_path or args.drywall_path:
        return parse_data_specs(args.data, args.cracks_path, args.drywall_path)
    if not segmenter.data_cfg.roots:
        raise ValueError(f"{args.ckpt}: no --data given and the checkpoint records no dataset roots; give --data CLASS=ROOT")
    logger.info("no --data given: using the checkpoint's roots %s", segmenter.data_cfg.roots)
    return {c: Path(r) for c, r in segmenter.data_cfg.roots.items()}
