"""`textseg synth`: two synthetic dataset roots (cracks and drywall) in the images + masks layout, seeded."""

from __future__ import annotations

import argparse
from pathlib import Path

from textseg.data.datasets import SPLITS
from textseg.data.synth import DEFAULT_COUNTS, ROOT_NAMES, SynthConfig, compare_with_real, generate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `textseg synth`."""
    parser.add_argument("--out", type=Path, required=True, help="output folder; writes OUT/cracks and OUT/drywall")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files (default 0)")
    for split in SPLITS:
        parser.add_argument(f"--{split}", type=int, default=DEFAULT_COUNTS[split], metavar="N",
                            help=f"images per class in {split}/ (default {DEFAULT_COUNTS[split]})")
    parser.add_argument("--size-range", type=parse_size_range, default=SynthConfig.size_range, metavar="MIN,MAX",
                        help="side lengths of the non-640x640 images (default 320,800)")
    parser.add_argument("--negative-fraction", type=float, default=SynthConfig.negative_fraction, metavar="F",
                        help=f"share of images with no defect (empty label and mask; default {SynthConfig.negative_fraction})")
    parser.add_argument("--overwrite", action="store_true", help="replace existing OUT/cracks and OUT/drywall splits")
    parser.add_argument("--compare-with", type=Path, default=None, metavar="REAL_ROOT",
                        help="also save OUT/synth_vs_real.png against REAL_ROOT/cracks and REAL_ROOT/drywall")


def run(args: argparse.Namespace) -> int:
    """Run `textseg synth` and print the dataset roots it wrote."""
    cfg = SynthConfig(size_range=args.size_range, negative_fraction=args.negative_fraction)
    counts = {split: getattr(args, split) for split in SPLITS}
    roots = generate(args.out, seed=args.seed, counts=counts, config=cfg, overwrite=args.overwrite)
    for cls, root in roots.items():
        print(f"{cls}={root}")
    if args.compare_with is not None:
        real = {cls: args.compare_with / name for cls, name in ROOT_NAMES.items()}
        print(f"figure: {compare_with_real(real, roots, args.out / 'synth_vs_real.png', seed=args.seed)}")
    return 0


def parse_size_range(text: str) -> tuple[int, int]:
    """"MIN,MAX" or "MIN-MAX" -> (MIN, MAX) side lengths in pixels."""
    parts = text.replace("-", ",").split(",")
    try:
        lo, hi = (int(p) for p in parts)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--size-range {text!r}: expected MIN,MAX in pixels, e.g. 320,800") from exc
    return lo, hi
