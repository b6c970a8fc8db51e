"""`textseg predict IMG [IMG ...] --prompt P --ckpt RUN/best.pt --out DIR [--tile]`: `{name}_mask.png` (0/255, the
photo's size) and `{name}_overlay.jpg` (the mask in red; none with `--no-overlay`) per image, and a line of statistics.

An unreadable image is reported and gets no files; the others are still written, and the command then exits with
status 1 naming every unreadable image. Prompt, checkpoint and device errors stop the command before anything is
written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from textseg.batch_io import background_workers, format_stats, predict_files, unreadable_error, write_predictions
from textseg.cli.common import add_prediction_arguments, prepare_prediction, unknown_prompt_note


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `textseg predict`."""
    parser.add_argument("images", nargs="+", type=Path, metavar="IMG", help="image files or directories of images")
    parser.add_argument("--out", required=True, type=Path, help="output directory for masks and overlays")
    parser.add_argument("--overlay", action=argparse.BooleanOptionalAction, default=True,
                        help="also write {name}_overlay.jpg, the photo with the mask in red (default on); --no-overlay "
                             "writes masks only")
    add_prediction_arguments(parser)

def run(args: argparse.Namespace) -> int:
    """Predict masks for every image; report unreadable images after writing the others."""
    seg, prompt, images, tiling = prepare_prediction(args)
    if (note := unknown_prompt_note(prompt, seg.prompt_meaning(prompt))) is not None:
        print(note)
    failed: list[str] = []
    written = 0
    results = predict_files(seg, images, prompt, args.threshold, args.batch_size, tiling, failed)
    for mask_path, pred in write_predictions(results, args.out, args.overlay, background_workers(tiling)):
        print(format_stats(mask_path.name, pred.stats()))
        written += 1
    if written:
        mode = f", tiles of {tiling.size or 'auto'} px" if tiling else ""
        shown = prompt if len(prompt) <= 60 else prompt[:57] + "..."
        print(f"prompt {shown!r} ({seg.prompt_meaning(prompt).describe()}), threshold {seg.threshold(prompt, args.threshold):g}{mode}: wrote masks{' and overlays' if args.overlay else ''} for {written} of {len(images)} images to {args.out}")
    if failed:
        raise unreadable_error(failed, len(images))
    return 0
