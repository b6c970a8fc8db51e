"""Training the decoder on frozen encoders: feature cache, validation, checkpoints, exact resume, DDP.

`textseg train --data crack=ROOT --data taping=ROOT --out RUN` writes the run folder (textseg.engine.runs.RunDir).

Model selection: score = mean IoU over classes * (1 - negative-prompt false-positive rate)
* (1 - unrelated-prompt false-positive rate), where an image counts as a false positive when its other class's
canonical prompt (or, for the second rate, a prompt for something textseg does not segment) predicts more than 1%
of its pixels. A model that predicts nothing and one that ignores the prompt (FP rate 1) both score 0, so an
early empty-mask epoch never wins over one that segments (a subtracted penalty let it win).

Under `torchrun --nproc_per_node N -m textseg train ...` every rank trains on its DistributedSampler
share of each global batch (--batch-size is global, split evenly over ranks), computes the features of
its shard of the images, validates its shard; rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, Subset

from textseg import CLASSES
from textseg.config import DataConfig, ModelConfig, TrainConfig, to_dict
from textseg.data.augment import IDENTITY, augment_batch
from textseg.data.datasets import SegDataset, collect_split
from textseg.files import save_json
from textseg.engine.cache import FeatureCache
from textseg.engine.ema import WeightAverage
from textseg.engine.losses import ClassLabels, class_labels, decoder_loss
from textseg.engine.runs import RunDir, best_epoch, describe_epoch
from textseg.engine.runtime import Dist, all_sum, amp_dtype, autocast, rng_state, seed_everything, set_rng_state, setup_distributed
from textseg.engine.schedule import lr_factor, run_progress
from textseg.metrics import NEGATIVE_AREA, dice, iou
from textseg.model.build import TextSegModel, build_model
from textseg.model.checkpoint import check_encoders, check_model_config, load_checkpoint, load_decoder_state, save_checkpoint
from textseg.progress import progress_bar
from textseg.prompts import NONE, UNRELATED, all_prompts, canonical_prompt, other_class, threshold_for

logger = logging.getLogger(__name__)


# ---- data -------------------------------------------------------------------------------------
def build_datasets(data_cfg: DataConfig) -> tuple[Any, Any]:
    """(train SegDataset with sampling, validation SegDataset unflipped) from the configured roots."""
    if not data_cfg.roots:
        raise ValueError("no datasets given; use --data crack=ROOT --data taping=ROOT")
    roots = {cls: Path(root) for cls, root in data_cfg.roots.items()}
    train_samples = collect_split(roots, "train", data_cfg.val_fraction, data_cfg.carve_seed)
    val_samples = collect_split(roots, "valid", data_cfg.val_fraction, data_cfg.carve_seed)
    where = ", ".join(f"{c}={r}" for c, r in roots.items())
    if not train_samples:
        raise ValueError(f"no training images found in {where}; expected ROOT/train/images/ (or ROOT/images/)")
    if not val_samples:
        raise ValueError(f"no validation images in {where}: add a valid/ split or set --val-fraction above 0")
    size = data_cfg.image_size
    train_ds = SegDataset(train_samples, size, negative_rate=data_cfg.negative_rate, flip=data_cfg.flip, seed=data_cfg.carve_seed,
                         preload=True, augment=data_cfg.augment, unrelated_rate=data_cfg.unrelated_rate)
    val_ds = SegDataset(val_samples, size, negative_rate=0.0, flip=False, seed=data_cfg.carve_seed, preload=True)
    return train_ds, val_ds


class Unflipped(torch.utils.data.Dataset):
    """A SegDataset's images with any flip undone, and their paths: what the feature cache encodes."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.dataset[index]  # preloaded: no second decode of the files
        image = item["image"].flip(-1) if item["flip"] else item["image"]  # (3, S, S)
        return {"image": image, "path": item["path"]}


# ---- one epoch --------------------------------------------------------------------------------
def train_step(
    model: TextSegModel, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, device: torch.device,
    dtype: torch.dtype | None, images: torch.Tensor, masks: torch.Tensor, text: torch.Tensor, padding: torch.Tensor,
    visual: torch.Tensor | None, labels: ClassLabels,
) -> torch.Tensor:
    """One optimisation step on a batch of (image, prompt) pairs with their encoders' features; returns the loss
    (detached, on the device: no sync)."""
    with autocast(device, dtype):
        out = model(images, text, padding, visual=visual)  # logits (B, 1, S, S)
    loss = decoder_loss(out, masks, labels)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def train_epoch(
    model: TextSegModel,
    loader: DataLoader,
    cache: FeatureCache,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    dtype: torch.dtype | None,
    info: Dist,
    desc: str = "train",
    ema: WeightAverage | None = None,
) -> float:
    """One pass over the loader (updating ema after each step when given); returns the mean training loss over all
    ranks' samples. The model's decoder may be wrapped in DistributedDataParallel."""
    model.train()
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    for batch in progress_bar(loader, desc=desc, unit="batch", leave=False, disable=not info.main):
        images = batch["image"].to(device, non_blocking=True)  # (B, 3, S, S), S = image_size
        masks = batch["mask"].to(device, non_blocking=True)  # (B, 1, S, S)
        visual = cache.visual_tokens(images, batch["path"], batch["flip"].tolist())  # (B, 196, Dv), None without a ViT
        has_mask = batch["has_mask"]
        if not torch.equal(batch["augment"], torch.tensor(IDENTITY).expand_as(batch["augment"])):
            images, masks, visual = augment_batch(images, masks, visual, batch["augment"])
            zoomed_has_mask = masks.flatten(1).amax(1).gt(0).cpu()  # a zoom can crop a positive's defect away
            has_mask = torch.where(batch["negative"], has_mask, zoomed_has_mask)
        text, padding = cache.text_tokens(batch["prompt"])  # (B, T, Dt), (B, T)
        labels = class_labels(batch["cls"], batch["prompt_cls"], has_mask).to(device)
        loss = train_step(model, optimizer, scaler, device, dtype, images, masks, text, padding, visual, labels)
        if ema is not None:
            ema.update(getattr(model.decoder, "module", model.decoder))  # inside a DistributedDataParallel wrapper
        total += loss * len(images)  # no device sync per step
        count += len(images)
    summed, count = all_sum([float(total), float(count)], info, device)
    return summed / max(count, 1)


@torch.no_grad()
def validate(
    model: TextSegModel,
    dataset: Any,
    cache: FeatureCache,
    device: torch.device,
    dtype: torch.dtype | None,
    info: Dist,
    batch_size: int,
    unrelated: bool = False,
) -> dict[str, float]:
    """Loss, IoU/Dice per class (summed counts at model size) and negative-prompt FP rate on this rank's shard; with
    `unrelated`, also how often a prompt for something textseg does not segment fires."""
    model.eval()
    shard = Subset(dataset, list(range(info.rank, len(dataset), info.world)))
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, pin_memory=device.type == "cuda")
    keys = [f"{c}_{k}" for c in CLASSES for k in ("tp", "fp", "fn", "n", "neg_fp", "unrelated_fp")]
    sums = dict.fromkeys(keys + ["loss", "pairs"], 0.0)
    for batch in progress_bar(loader, desc="valid", unit="batch", leave=False, disable=not info.main):
        images = batch["image"].to(device, non_blocking=True)  # (B, 3, S, S)
        masks = batch["mask"].to(device, non_blocking=True)  # (B, 1, S, S)
        classes = list(batch["cls"])
        b = len(classes)
        visual = cache.visual_tokens(images, batch["path"], [0] * b)  # (B, 196, Dv), None without a ViT
        prompts = [canonical_prompt(c) for c in classes] + [canonical_prompt(other_class(c)) for c in classes]
        prompt_classes = classes + [other_class(c) for c in classes]
        if unrelated:  # one prompt for another thing per image, the same one for an image in every epoch
            index = batch["index"].tolist()
            prompts += [UNRELATED[(i * 7919) % len(UNRELATED)] for i in index]
            prompt_classes += [NONE] * b
        copies = len(prompts) // b
        text, padding = cache.text_tokens(prompts)  # (copies B, T, Dt)
        with autocast(device, dtype):
            visual = visual.repeat(copies, 1, 1) if visual is not None else None
            features = model.pixel_features(images)  # once per image, not per (image, prompt)
            features = None if features is None else [f.repeat(copies, 1, 1, 1) for f in features]
            out = model(images.repeat(copies, 1, 1, 1), text, padding, visual=visual, pixel_features=features)
        logits = out.logits.float()  # (copies B, 1, S, S): positives, negatives, then prompts for other things
        targets = torch.cat([masks] + [torch.zeros_like(masks)] * (copies - 1))
        has_mask = masks.flatten(1).amax(1).gt(0).repeat(copies)
        labels = class_labels(classes * copies, prompt_classes, has_mask).to(device)
        sums["loss"] += float(decoder_loss(out, targets, labels)) * len(targets)
        sums["pairs"] += len(targets)
        cutoff = torch.tensor([threshold_for(p, meaning=c) for p, c in zip(prompts, prompt_classes)], device=device)
        pred = (logits.sigmoid().flatten(1) > cutoff[:, None])  # (copies B, H*W)
        pos, target = pred[:b], masks.flatten(1) > 0.5
        fired = (pred[b:].float().mean(1) > NEGATIVE_AREA).long().view(copies - 1, b)  # (copies - 1, B)
        unrelated_fired = fired[1] if unrelated else torch.zeros_like(fired[0])
        counts = torch.stack([(pos & target).sum(1), (pos & ~target).sum(1), (~pos & target).sum(1), fired[0],
                              unrelated_fired], 1).tolist()  # (B, 5); one device sync per batch
        for cls, (tp, fp, fn, neg_fp, unrel_fp) in zip(classes, counts):
            sums[f"{cls}_tp"] += tp
            sums[f"{cls}_fp"] += fp
            sums[f"{cls}_fn"] += fn
            sums[f"{cls}_n"] += 1
            sums[f"{cls}_neg_fp"] += neg_fp
            sums[f"{cls}_unrelated_fp"] += unrel_fp
    names = list(sums)
    sums = dict(zip(names, all_sum([sums[k] for k in names], info, device)))
    return summarise_validation(sums)


def summarise_validation(sums: dict[str, float]) -> dict[str, float]:
    """Metrics from summed counts: IoU, Dice, FP rate per present class; means; the selection score."""
    out: dict[str, float] = {"val_loss": sums["loss"] / max(sums["pairs"], 1)}
    present = [c for c in CLASSES if sums[f"{c}_n"] > 0]
    for c in present:
        tp, fp, fn = (int(sums[f"{c}_{k}"]) for k in ("tp", "fp", "fn"))
        out[f"iou_{c}"] = float(iou(tp, fp, fn))
        out[f"dice_{c}"] = float(dice(tp, fp, fn))
        out[f"neg_fp_{c}"] = sums[f"{c}_neg_fp"] / sums[f"{c}_n"]
    out["mean_iou"] = float(np.mean([out[f"iou_{c}"] for c in present]))
    out["mean_dice"] = float(np.mean([out[f"dice_{c}"] for c in present]))
    images = sum(sums[f"{c}_n"] for c in present)
    out["negative_fp_rate"] = sum(sums[f"{c}_neg_fp"] for c in present) / images
    out["unrelated_fp_rate"] = sum(sums.get(f"{c}_unrelated_fp", 0.0) for c in present) / images
    out["score"] = out["mean_iou"] * (1.0 - out["negative_fp_rate"]) * (1.0 - out["unrelated_fp_rate"])
    return out


# ---- run directory ----------------------------------------------------------------------------
def _check_out_dir(run_dir: RunDir, resume: Path | None, overwrite: bool) -> None:
    """Refuse to mix a new run into a folder holding another run's checkpoints."""
    if resume is None and not overwrite and run_dir.holds_run():
        raise FileExistsError(f"{run_dir.path} already holds a training run ({run_dir.last}); use --resume to continue it, "
                              "--overwrite to replace it, or another --out")
    if resume is None and overwrite:
        run_dir.clear()


# ---- the run ----------------------------------------------------------------------------------
@dataclass
class _Run:
    """What one training run holds from its setup, through its epochs, to its end."""

    configs: dict[str, dict[str, Any]]  # data, model, train: as checkpoints store them
    train_cfg: TrainConfig
    run_dir: RunDir
    info: Dist
    device: torch.device
    dtype: torch.dtype | None
    train_ds: Any
    val_ds: Any
    decoder: nn.Module  # the decoder being trained
    model: TextSegModel  # the encoders with that decoder (inside DistributedDataParallel with several processes)
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    ema: WeightAverage | None
    cache: FeatureCache
    sampler: DistributedSampler
    loader: DataLoader
    identity: dict[str, Any]
    start: float
    first_epoch: int = 0
    best_score: float = -math.inf
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def evaluated(self) -> nn.Module:
        """The decoder that is validated, saved and predicted with: the weight average when there is one."""
        return self.decoder if self.ema is None else self.ema.module


def train(
    data_cfg: DataConfig,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    out_dir: str | Path,
    resume: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train the decoder; write checkpoints and metrics under out_dir; return a summary dict.

    Summary: "history" (metrics per epoch), "best" (its metrics line), "epochs_run" (in this call),
    "stopped_early" (--max-minutes), "cache" (hit/miss counters), "paths" (best/last/metrics).
    """
    run = _setup(data_cfg, model_cfg.resolved(data_cfg.image_size), train_cfg, RunDir(out_dir), resume, overwrite)
    epochs_run, stopped_early = 0, False
    for epoch in range(run.first_epoch, train_cfg.epochs):
        _run_epoch(run, epoch)
        epochs_run += 1
        if _out_of_time(run.start, train_cfg.max_minutes, run.info, run.device) and epoch + 1 < train_cfg.epochs:
            logger.info("stopping after epoch %d: --max-minutes %s reached", epoch + 1, train_cfg.max_minutes)
            stopped_early = True
            break
    return _finish(run, epochs_run, stopped_early)


def _check_settings(data_cfg: DataConfig, model_cfg: ModelConfig, train_cfg: TrainConfig, info: Dist) -> None:
    """Settings that cannot work fail here, before anything is loaded or written."""
    if train_cfg.batch_size % info.world:
        raise ValueError(f"--batch-size {train_cfg.batch_size} must be divisible by the {info.world} processes")
    if data_cfg.unrelated_rate > 0 and not model_cfg.none_class:
        raise ValueError(f"unrelated_rate {data_cfg.unrelated_rate} trains prompts for other things, which needs a model "
                         "whose prompt classifier answers 'none' (none_class); set --unrelated-rate 0")


def _setup(data_cfg: DataConfig, model_cfg: ModelConfig, train_cfg: TrainConfig, run_dir: RunDir,
           resume: str | Path | None, overwrite: bool) -> _Run:
    """Check the settings and the checkpoint, build data, model and optimizer, restore a resumed run's state, write
    config.json, fill the feature cache. The order keeps a resumed run's random numbers those of an unbroken one."""
    start = time.monotonic()
    info, device = setup_distributed(train_cfg.device)
    _check_settings(data_cfg, model_cfg, train_cfg, info)
    ckpt = load_checkpoint(resume) if resume is not None else None
    ckpt_path = resume or "checkpoint"  # named in errors about the checkpoint
    if ckpt is not None:
        check_model_config(ckpt, model_cfg, ckpt_path)
    if info.main:
        _check_out_dir(run_dir, None if resume is None else Path(resume), overwrite)
    seed_everything(train_cfg.shuffle_seed)
    train_ds, val_ds = build_datasets(data_cfg)
    built = build_model(model_cfg)
    if ckpt is not None:
        check_encoders(ckpt, built.identity, ckpt_path)
    built.to(device)
    decoder = built.decoder
    optimizer = build_optimizer(decoder, train_cfg)  # before DDP, which registers the parameters that train
    model = built
    if info.world > 1:
        model = built.with_decoder(
            nn.parallel.DistributedDataParallel(decoder, device_ids=[device.index] if device.type == "cuda" else None))
    dtype = amp_dtype(device, train_cfg.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    first_epoch, best_score, history = 0, -math.inf, []
    if ckpt is not None:
        first_epoch, best_score = _restore(ckpt, decoder, optimizer, scaler, ckpt_path)
        history = run_dir.history(first_epoch)
        logger.info("resuming %s at epoch %d of %d", resume, first_epoch, train_cfg.epochs)
    ema = WeightAverage(decoder, train_cfg.ema_decay) if train_cfg.ema_decay > 0 else None  # of the restored weights
    if ema is not None and ckpt is not None and "train_decoder" in ckpt.get("state", {}):
        ema.load(ckpt["decoder"], ckpt["state"]["ema_steps"], ckpt_path)
    configs = {"data": to_dict(data_cfg), "model": to_dict(model_cfg), "train": to_dict(train_cfg)}
    if info.main:
        run_dir.path.mkdir(parents=True, exist_ok=True)
        save_json({**configs, "encoders": built.identity}, run_dir.config)
        run_dir.write_history(history)
    cache = FeatureCache(built.visual, built.text, train_cfg.cache, run_dir.cache, device,
                         batch_size=max(16, train_cfg.batch_size // info.world), image_size=data_cfg.image_size, amp_dtype=dtype)
    _precompute(cache, train_ds, val_ds, data_cfg, info)
    sampler = DistributedSampler(train_ds, num_replicas=info.world, rank=info.rank, shuffle=True, seed=train_cfg.shuffle_seed)
    loader = DataLoader(train_ds, batch_size=train_cfg.batch_size // info.world, sampler=sampler,
                        num_workers=train_cfg.num_workers, pin_memory=device.type == "cuda")
    if ckpt is not None and "state" in ckpt:
        set_rng_state(ckpt["state"]["rng"][min(info.rank, len(ckpt["state"]["rng"]) - 1)])
    logger.info("training %s decoder (%.2f M parameters) on %d images, validating on %d; device %s x%d; cache %s",
                model_cfg.decoder, sum(p.numel() for p in decoder.parameters()) / 1e6, len(train_ds), len(val_ds), device,
                info.world, train_cfg.cache)
    return _Run(configs, train_cfg, run_dir, info, device, dtype, train_ds, val_ds, decoder, model, optimizer, scaler, ema,
                cache, sampler, loader, built.identity, start, first_epoch, best_score, history)


def _run_epoch(run: _Run, epoch: int) -> None:
    """Train one epoch, validate the evaluated weights, record the metrics and save the checkpoints."""
    tic = time.monotonic()
    cfg = run.train_cfg
    _set_lr(run.optimizer, cfg, epoch, _elapsed_s(run.start, run.info, run.device))
    run.train_ds.set_epoch(epoch)
    run.sampler.set_epoch(epoch)
    train_loss = train_epoch(run.model, run.loader, run.cache, run.optimizer, run.scaler, run.device, run.dtype, run.info,
                             f"epoch {epoch + 1}/{cfg.epochs}", run.ema)
    if not math.isfinite(train_loss):
        raise FloatingPointError(
            f"training loss became {train_loss} in epoch {epoch + 1}; nothing of this epoch was saved: continue from "
            f"{run.run_dir.last} with a lower --lr, or start over"
        )
    metrics = validate(run.model.with_decoder(run.evaluated), run.val_ds, run.cache, run.device, run.dtype, run.info, cfg.batch_size // run.info.world,
                       unrelated=run.configs["data"]["unrelated_rate"] > 0)
    line = {"epoch": epoch + 1, "train_loss": train_loss, **metrics, "epoch_time_s": time.monotonic() - tic,
            "lr": run.optimizer.param_groups[0]["lr"], "cache": dict(run.cache.stats)}
    run.history.append(line)
    is_best = line["score"] > run.best_score
    run.best_score = max(run.best_score, line["score"])
    rngs = _gather_rng(run.info)  # every rank takes part
    if run.info.main:
        minutes = (time.monotonic() - run.start) / 60
        logger.info("%s", describe_epoch(line, cfg.epochs, minutes, cfg.max_minutes, is_best))
        _save_epoch(run.run_dir, _payload(run, line, rngs), is_best, cfg.save_interval)


def _payload(run: _Run, line: dict[str, Any], rngs: list[dict[str, Any]]) -> dict[str, Any]:
    """The checkpoint of the epoch `line` describes: evaluated weights, optimizer, configs, and the state to resume."""
    state: dict[str, Any] = {"rng": rngs, "best_score": run.best_score,
                             "scaler": run.scaler.state_dict() if run.scaler.is_enabled() else {}}
    if run.ema is not None:
        state.update(train_decoder=run.decoder.state_dict(), ema_steps=run.ema.steps)
    return {"decoder": run.evaluated.state_dict(), "optimizer": run.optimizer.state_dict(), "epoch": line["epoch"],
            "configs": run.configs, "encoders": run.identity, "metrics": line, "state": state}


def _finish(run: _Run, epochs_run: int, stopped_early: bool) -> dict[str, Any]:
    """Leave the process group and summarise the run."""
    if run.info.world > 1:
        dist.barrier()
    if run.info.owns_group:
        dist.destroy_process_group()
    run_dir = run.run_dir
    return {
        "history": run.history,
        "best": best_epoch(run.history),
        "epochs_run": epochs_run,
        "stopped_early": stopped_early,
        "cache": dict(run.cache.stats),
        "paths": {"best": run_dir.best, "last": run_dir.last, "metrics": run_dir.metrics},
        "elapsed_s": time.monotonic() - run.start,
    }


def _restore(ckpt: dict[str, Any], decoder: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, path: str | Path) -> tuple[int, float]:
    """Load the trained (not averaged) decoder, optimizer and grad-scaler states; return (completed epochs, best score so far)."""
    state = ckpt.get("state", {})
    load_decoder_state(decoder, state.get("train_decoder", ckpt["decoder"]), path)
    optimizer.load_state_dict(ckpt["optimizer"])
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    return int(ckpt["epoch"]), float(state.get("best_score", -math.inf))


def _save_epoch(run_dir: RunDir, payload: dict[str, Any], is_best: bool, save_interval: int) -> None:
    """Append the metrics line, then write last.pt, best.pt (if best) and epoch_XXX.pt (every save_interval)."""
    epoch = payload["epoch"]
    run_dir.append_epoch(payload["metrics"])
    save_checkpoint(run_dir.last, payload)
    if is_best:
        save_checkpoint(run_dir.best, payload)
    if save_interval > 0 and epoch % save_interval == 0:
        save_checkpoint(run_dir.epoch(epoch), payload)


def _precompute(cache: FeatureCache, train_ds: Any, val_ds: Any, data_cfg: DataConfig, info: Dist) -> None:
    """Fill the cache: all prompts, this rank's shard of (train image, flip) and validation images."""
    if cache.mode == "none":
        return
    cache.precompute_text(all_prompts())
    own = Subset(Unflipped(train_ds), list(range(info.rank, len(train_ds), info.world)))
    keys = cache.precompute_visual(own, (0, 1) if data_cfg.flip else (0,), desc="caching train features")
    cache.share(keys)
    val_own = Subset(val_ds, list(range(info.rank, len(val_ds), info.world)))
    cache.precompute_visual(val_own, (0,), desc="caching valid features")
    if info.world > 1:
        dist.barrier()  # disk mode: every rank's shard is written before any rank reads it


def _gather_rng(info: Dist) -> list[dict[str, Any]]:
    """Every rank's RNG state (rank order), so a resumed DDP run continues each rank's stream."""
    state = rng_state()
    if info.world == 1:
        return [state]
    states: list[Any] = [None] * info.world
    dist.all_gather_object(states, state)
    return states


def _elapsed_s(start: float, info: Dist, device: torch.device) -> float:
    """Seconds since the run started by rank 0's clock, the same number on every rank."""
    return all_sum([time.monotonic() - start if info.main else 0.0], info, device)[0]


def _out_of_time(start: float, max_minutes: float | None, info: Dist, device: torch.device) -> bool:
    """True once max_minutes have passed since the run started (rank 0 decides for all ranks)."""
    return max_minutes is not None and _elapsed_s(start, info, device) >= max_minutes * 60


def build_optimizer(decoder: nn.Module, train_cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the decoder; a pretrained pixel encoder's parameters train at lr * pixel_lr_scale (frozen at 0)."""
    encoder = getattr(decoder, "pixel", None)  # the pretrained pixel encoder of PixelRefineDecoder
    pixel = {id(p) for p in encoder.parameters()} if encoder is not None else set()
    if train_cfg.pixel_lr_scale == 0:
        for param in decoder.parameters():
            if id(param) in pixel:
                param.requires_grad_(False)
    groups = [{"params": [p for p in decoder.parameters() if id(p) not in pixel], "lr_scale": 1.0}]
    if pixel and train_cfg.pixel_lr_scale > 0:
        groups.append({"params": [p for p in decoder.parameters() if id(p) in pixel], "lr_scale": train_cfg.pixel_lr_scale})
    for group in groups:
        group["lr"] = train_cfg.lr * group["lr_scale"]
    return torch.optim.AdamW(groups, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)


def _set_lr(optimizer: torch.optim.Optimizer, train_cfg: TrainConfig, epoch: int, elapsed_s: float) -> None:
    """Learning rate of this epoch from the schedule (elapsed_s: rank 0's clock, so all ranks agree)."""
    progress = run_progress(epoch, train_cfg.epochs, elapsed_s, train_cfg.max_minutes)
    for group in optimizer.param_groups:
        group["lr"] = train_cfg.lr * group.get("lr_scale", 1.0) * lr_factor(train_cfg.lr_schedule, progress)
