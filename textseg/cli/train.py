"""`textseg train --data CLASS=ROOT ... --out RUN`: train the decoder. Every setting of textseg.config is an option
(declared once, on the config field: textseg.config.setting); unset options keep the defaults, or with --resume the
checkpoint's."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from textseg import CLASSES
from textseg.config import DataConfig, ModelConfig, TrainConfig, add_config_arguments, from_dict, to_dict, values_from_args
from textseg.data.datasets import add_data_arguments, parse_data_specs
from textseg.engine.runs import RunDir
from textseg.engine.train import train
from textseg.model.checkpoint import load_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `textseg train`: the datasets, the run folder, and one option per config setting
    (textseg.config.setting); unset options keep the defaults (or, with --resume, the checkpoint's)."""
    add_data_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="run directory (checkpoints, metrics.jsonl, config.json)")
    add_config_arguments(parser)
    parser.add_argument("--seed", type=int, default=None, help="--carve-seed and --shuffle-seed together: one carve of the data")
    parser.add_argument("--no-cache", action="store_true", help="recompute the frozen encoders at every step (--cache none)")
    parser.add_argument("--resume", nargs="?", const="", metavar="CKPT", help="continue a run from CKPT (default: OUT/last.pt)")
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --out")


def configs_from_args(args: argparse.Namespace, base: dict[str, dict[str, Any]] | None = None) -> tuple[DataConfig, ModelConfig, TrainConfig]:
    """Configs from parsed CLI arguments over `base` (a checkpoint's configs) or the defaults."""
    base = base or {"data": to_dict(DataConfig()), "model": to_dict(ModelConfig()), "train": to_dict(TrainConfig())}
    data = values_from_args(args, DataConfig, base["data"])
    model = values_from_args(args, ModelConfig, base["model"])
    train = values_from_args(args, TrainConfig, base["train"])
    if args.seed is not None:  # unless set one by one
        data["carve_seed"] = args.seed if args.carve_seed is None else data["carve_seed"]
        train["shuffle_seed"] = args.seed if args.shuffle_seed is None else train["shuffle_seed"]
    if args.no_cache:
        train["cache"] = "none"
    if args.data or args.cracks_path or args.drywall_path:
        roots = parse_data_specs(args.data, args.cracks_path, args.drywall_path)
        data["roots"] = {cls: str(root) for cls, root in roots.items()}
    return from_dict(DataConfig, data), from_dict(ModelConfig, model), from_dict(TrainConfig, train)


def run(args: argparse.Namespace) -> int:
    """`textseg train`: build configs from the arguments (and --resume's checkpoint) and train."""
    resume = None if args.resume is None else Path(args.resume or RunDir(args.out).last)
    base = None
    if resume is not None:
        base = load_checkpoint(resume)["configs"]
    data_cfg, model_cfg, train_cfg = configs_from_args(args, base)
    summary = train(data_cfg, model_cfg, train_cfg, args.out, resume=resume, overwrite=args.overwrite)
    if int(os.environ.get("RANK", "0")) == 0:
        best = summary["best"]
        if best is not None:
            ious = ", ".join(f"{c} {best[f'iou_{c}']:.3f}" for c in CLASSES if f"iou_{c}" in best)
            print(f"best epoch {best['epoch']}: IoU {ious}; negative-prompt FP rate {best['negative_fp_rate']:.3f}; score {best['score']:.3f}")
        print(f"ran {summary['epochs_run']} epoch(s) in {summary['elapsed_s']:.1f} s{' (stopped by --max-minutes)' if summary['stopped_early'] else ''}")
        print(f"checkpoints: {summary['paths']['best']}, {summary['paths']['last']}; metrics: {summary['paths']['metrics']}")
    return 0
