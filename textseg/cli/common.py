"""Options and checks shared by the commands that run a trained model (predict, inspect, evaluate)."""

from __future__ import annotations

import argparse
from pathlib import Path

from textseg import CLASSES, THRESHOLD
from textseg.batch_io import check_output_stems, expand_inputs
from textseg.predictor import TILE_SIZE, Segmenter, Tiling, check_prompt
from textseg.prompts import PromptMeaning, canonical_prompt, threshold_for, thresholds_text


def add_prediction_arguments(parser: argparse.ArgumentParser) -> None:
    """Prompt, checkpoint, threshold, batching, tiling and device (predict, inspect)."""
    parser.add_argument("--prompt", required=True, help='what to segment, e.g. "segment crack"')
    parser.add_argument("--ckpt", required=True, type=Path, help="checkpoint written by textseg train (RUN/best.pt)")
    parser.add_argument("--threshold", type=float, default=None,
                        help=f"probability above which a pixel is foreground (default: the prompt's class's, {thresholds_text()}; "
                             f"{THRESHOLD} for a prompt that names no class)")
    parser.add_argument("--batch-size", type=int, default=8, help="images (or tiles, with --tile) per forward pass (default 8)")
    parser.add_argument("--tile", action="store_true", help="segment at full resolution in overlapping tiles (large photos)")
    parser.add_argument("--tile-size", type=int, default=None,
                        help=f"photo pixels per model input with --tile (default: the photo's shorter side, at least {TILE_SIZE}, "
                             "the scale the model was trained at; smaller zooms in)")
    parser.add_argument("--overlap", type=float, default=Tiling.overlap, help=f"overlap of neighbouring tiles, a fraction of a tile (default {Tiling.overlap})")
    add_segmenter_arguments(parser)


def add_segmenter_arguments(parser: argparse.ArgumentParser) -> None:
    """--device and the encoder-weights overrides of Segmenter.from_checkpoint (predict, evaluate)."""
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    parser.add_argument("--visual-weights", default=None,
                        help="where the checkpoint's ViT weights are, when it was trained with one and they are not "
                             "found as recorded (a timm state-dict file); must match the checkpoint")
    parser.add_argument("--text-weights", default=None,
                        help="where the checkpoint's text-encoder weights are, when not found as recorded (MiniLM: its "
                             "model.zip or folder; CLIP: ViT-B-32.pt); must match the checkpoint")


def prepare_prediction(args: argparse.Namespace) -> tuple[Segmenter, str, list[Path], Tiling | None]:
    """Check the shared prediction arguments, then load the model: every argument error comes before any model work."""
    prompt = check_prompt(args.prompt)
    threshold_for(prompt, args.threshold)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    tiling = Tiling(args.tile_size, args.overlap, args.batch_size) if args.tile else None
    images = check_output_stems(expand_inputs(args.images))
    seg = Segmenter.from_checkpoint(args.ckpt, args.device, args.visual_weights, args.text_weights)
    seg.encode_prompt(prompt)
    return seg, prompt, images, tiling


def unknown_prompt_note(prompt: str, meaning: PromptMeaning) -> str | None:
    """The line the command line prints for a prompt the model's classifier takes to mean none of the classes (its masks
    come out empty); None for a known class, and for a model that reads prompts by their words (its masks are not)."""
    if meaning.known or meaning.source != "model":
        return None
    shown = prompt if len(prompt) <= 60 else prompt[:57] + "..."
    return (f"prompt {shown!r} matches no class textseg segments: read as {meaning.describe()}; its masks are empty "
            f"because of that (try e.g. {' or '.join(repr(canonical_prompt(c)) for c in CLASSES)})")
