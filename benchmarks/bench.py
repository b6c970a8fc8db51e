"""Training and prediction benchmarks of textseg, measured in one run on this machine.

1. Epoch time with the feature cache vs without (`--no-cache`) vs the decoder's bare compute
   (forward + backward + AdamW step on the same batches with the features already on hand), for both
   decoders, with the real encoders' architecture (random weights) on N real images; the cache fill
   is timed separately. Runs the package's own `train_epoch` and `FeatureCache`.
2. Prediction throughput: `Segmenter.predict` one image at a time vs batched (checkpoint of an
   untrained decoder, written on the fly: quality is irrelevant here).
3. Peak memory of each phase: resident set (VmHWM, reset before each phase) and, on CUDA,
   torch.cuda.max_memory_allocated.
4. `--quality`: `textseg train` of both decoders on the real sample with `--max-minutes`, then
   `textseg.evaluate` of each best.pt on the held-out (photo-grouped) validation split.

Everything printed is also appended, dated, with the machine and settings, to benchmarks/RESULTS.md.

    python benchmarks/bench.py [--data crack=ROOT --data taping=ROOT] [--images 64] [--batch-size 32]
        [--device cpu|cuda] [--quality --quality-minutes 55] [--results benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.utils.data import DataLoader, DistributedSampler

from textseg import CLASSES
from textseg.config import DECODERS, DataConfig, ModelConfig, TrainConfig, to_dict
from textseg.data.datasets import Sample, SegDataset, collect_split, list_samples, load_target, parse_data_specs
from textseg.data.images import save_mask
from textseg.engine.cache import FeatureCache
from textseg.engine.losses import class_labels
from textseg.engine.runs import read_history
from textseg.engine.runtime import amp_dtype
from textseg.engine.runtime import Dist, resolve_device, seed_everything
from textseg.engine.train import Unflipped, train_epoch, train_step
from textseg.model.build import TextSegModel, build_model
from textseg.model.checkpoint import checkpoint_configs, load_checkpoint, save_checkpoint
from textseg.model.decoder import build_decoder
from textseg.model.encoders import build_encoders
from textseg.prompts import all_prompts, canonical_prompt, thresholds_text

REPO = Path(__file__).resolve().parents[1]
REAL_SAMPLE = REPO.parent / "shared" / "data" / "roboflow-sample"
VENDORED_SAMPLE = REPO / "data" / "sample"

BENCH_IMAGES = 64  # default train images of the epoch benchmark
TARGET_CACHE_SPEEDUP = 4.0  # uncached / cached epoch time
TARGET_CACHE_OVERHEAD = 1.2  # cached epoch / bare decoder compute
TARGET_BATCHED_SPEEDUP = 3.0  # batched / single-image prediction throughput (CPU)
TARGETS = {"crack": 0.55, "taping": 0.60, "wrong_prompt": 0.03}  # quality of the default: 55 min, 2 CPU cores, random ViT/CLIP


# ---- machine, timing, memory ------------------------------------------------------------------
def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_line(device: torch.device) -> str:
    """One line naming the CPU, cores, torch, device and the load at the start."""
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"device {device}{gpu}, Python {platform.python_version()}, load average {load}"
    )


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work so wall-clock times are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall-clock seconds and this process's CPU seconds (all threads) of one call."""

    wall: float
    cpu: float


def timed(fn: Callable[[], Any], device: torch.device) -> Timing:
    """Wall and CPU time of one call of fn (CUDA synchronised before and after)."""
    sync(device)
    tic, cpu = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return Timing(time.perf_counter() - tic, time.process_time() - cpu)


def fastest(timings: Sequence[Timing]) -> Timing:
    """Minimum wall and minimum CPU time over repeats (each the least disturbed by other load)."""
    return Timing(min(t.wall for t in timings), min(t.cpu for t in timings))


def _status_kib(field: str) -> int | None:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM), or None where there is no procfs."""
    status = Path("/proc/self/status")
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux clear_refs); False if impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


class PeakMemory:
    """Peak resident memory (MiB) and peak CUDA allocation (MiB) of the process during a block."""

    def __init__(self, device: torch.device):
        self.device = device
        self.rss_mib = 0.0
        self.cuda_mib: float | None = None
        self.exact = False  # True: peak of this block alone; False: peak since the process started

    def __enter__(self) -> "PeakMemory":
        self.exact = _reset_peak_rss()
        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.exact:
            self.rss_mib = (_status_kib("VmHWM") or 0) / 1024
        else:
            self.rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        if self.device.type == "cuda":
            sync(self.device)
            self.cuda_mib = torch.cuda.max_memory_allocated(self.device) / 2**20


# ---- data -------------------------------------------------------------------------------------
def default_roots() -> dict[str, Path]:
    """The real Roboflow sample in ../shared if present, else the vendored subset in data/sample."""
    base = REAL_SAMPLE if REAL_SAMPLE.is_dir() else VENDORED_SAMPLE
    return {"crack": base / "cracks", "taping": base / "drywall"}


def pick_samples(samples: Sequence[Sample], n: int | None, seed: int) -> list[Sample]:
    """Up to n samples, split evenly over classes, drawn with a fixed seed (all of them when n is None)."""
    if n is None:
        return list(samples)
    by_class = {c: sorted((s for s in samples if s.cls == c), key=lambda s: str(s.image)) for c in CLASSES}
    by_class = {c: v for c, v in by_class.items() if v}
    picked: list[Sample] = []
    for i, (cls, group) in enumerate(by_class.items()):
        share = n // len(by_class) + (1 if i < n % len(by_class) else 0)
        picked += random.Random(f"{seed}:{cls}").sample(group, min(share, len(group)))
    return picked


def subset_roots(roots: dict[str, Path], n: int, out: Path, seed: int) -> dict[str, Path]:
    """Dataset roots holding n train images (split over classes): image links plus masks/ rasterised from any layout."""
    picked = pick_samples([s for cls, root in roots.items() for s in list_samples(root, "train", cls)], n, seed)
    new_roots = {}
    for cls in roots:
        split_dir = out / cls / "train"
        (split_dir / "images").mkdir(parents=True, exist_ok=True)
        for sample in (s for s in picked if s.cls == cls):
            link = split_dir / "images" / sample.image.name
            if not link.exists():
                link.symlink_to(sample.image.resolve())
            save_mask(load_target(sample), split_dir / "masks" / f"{sample.image.stem}.png")
        new_roots[cls] = out / cls
    return new_roots


# ---- 1 + 3: training epochs -------------------------------------------------------------------
def bench_training(samples: list[Sample], model_cfg: ModelConfig, batch_size: int, device: torch.device, repeats: int, seed: int,
                   amp: bool = True) -> dict[str, Any]:
    """Cache fill, then per decoder: uncached, cached and bare-compute epochs on the same batches, with peak memory."""
    data_cfg, train_cfg = DataConfig(carve_seed=seed), TrainConfig(shuffle_seed=seed, batch_size=batch_size, amp=amp)
    seed_everything(seed)
    train_ds = SegDataset(samples, data_cfg.image_size, negative_rate=data_cfg.negative_rate, flip=data_cfg.flip, seed=seed, preload=True)
    visual, text = build_encoders(model_cfg)
    visual, text = visual.to(device).eval(), text.to(device).eval()
    dtype = amp_dtype(device, train_cfg.amp)
    cache = FeatureCache(visual, text, "memory", device=device, batch_size=max(16, batch_size), amp_dtype=dtype)
    no_cache = FeatureCache(visual, text, "none", device=device, batch_size=max(16, batch_size), amp_dtype=dtype)
    flips = (0, 1) if data_cfg.flip else (0,)

    def fill() -> None:
        cache.precompute_text(all_prompts())
        cache.precompute_visual(Unflipped(train_ds), flips, desc="bench: caching features")

    with PeakMemory(device) as fill_mem:
        fill_time = timed(fill, device)
    out: dict[str, Any] = {"images": len(train_ds), "flips": len(flips), "fill": fill_time, "memory": {"cache fill": fill_mem}, "decoders": {}}
    sampler = DistributedSampler(train_ds, num_replicas=1, rank=0, shuffle=True, seed=seed)
    loader = DataLoader(train_ds, batch_size=batch_size, sampler=sampler, num_workers=0, pin_memory=device.type == "cuda")
    for name in DECODERS:
        out["decoders"][name] = _bench_decoder(name, model_cfg, visual, text, train_ds, sampler, loader, cache, no_cache, train_cfg, device, dtype, repeats, out["memory"])
    return out


def _bench_decoder(
    name: str, model_cfg: ModelConfig, visual: torch.nn.Module, text: torch.nn.Module, train_ds: SegDataset,
    sampler: DistributedSampler, loader: DataLoader, cache: FeatureCache, no_cache: FeatureCache,
    train_cfg: TrainConfig, device: torch.device, dtype: torch.dtype | None, repeats: int, memory: dict[str, PeakMemory],
) -> dict[str, Any]:
    """Times of one decoder: min over `repeats` of bare and cached epochs, one uncached epoch; all on epoch 0's batches."""
    cfg = dataclasses.replace(model_cfg, decoder=name)
    decoder = build_decoder(cfg, visual.out_dim, text.out_dim).to(device)
    model = TextSegModel(visual, text, decoder, cfg)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    info = Dist()

    def start_epoch() -> None:
        train_ds.set_epoch(0)
        sampler.set_epoch(0)

    def epoch_with(feature_cache: FeatureCache) -> None:
        start_epoch()
        train_epoch(model, loader, feature_cache, optimizer, scaler, device, dtype, info, f"bench {name}")

    batches: list[tuple[Any, ...]] = []  # the same batches train_epoch sees, with their features

    def load_and_look_up() -> None:
        start_epoch()
        batches.clear()
        for batch in loader:
            images = batch["image"].to(device)  # (B, 3, 224, 224)
            tokens = cache.visual_tokens(images, batch["path"], batch["flip"].tolist())  # (B, 196, Dv)
            features, padding = cache.text_tokens(batch["prompt"])  # (B, 77, Dt), (B, 77)
            labels = class_labels(batch["cls"], batch["prompt_cls"], batch["has_mask"]).to(device)
            batches.append((tokens, features, padding, images, batch["mask"].to(device), labels))

    load_and_look_up()  # warm-up: first DataLoader pass
    lookup = timed(load_and_look_up, device)  # the cached epoch's work besides the decoder

    def bare() -> None:
        model.train()
        for tokens, features, padding, images, masks, labels in batches:
            train_step(model, optimizer, scaler, device, dtype, images, masks, features, padding, tokens, labels)
        sync(device)

    bare()  # warm-up: allocator, AdamW state, kernels
    bare_times: list[Timing] = []
    cached_times: list[Timing] = []
    for _ in range(repeats):  # interleaved, so a burst of load on the machine hits both alike
        bare_times.append(timed(bare, device))
        with PeakMemory(device) as cached_mem:
            cached_times.append(timed(lambda: epoch_with(cache), device))
    with PeakMemory(device) as uncached_mem:
        uncached = timed(lambda: epoch_with(no_cache), device)
    memory[f"{name}: cached epoch"] = cached_mem
    memory[f"{name}: uncached epoch"] = uncached_mem
    return {
        "parameters_m": sum(p.numel() for p in decoder.parameters()) / 1e6,
        "batches": len(batches),
        "bare": fastest(bare_times),
        "cached": fastest(cached_times),
        "uncached": uncached,
        "lookup": lookup,
    }


# ---- 2 + 3: prediction ------------------------------------------------------------------------
def untrained_checkpoint(path: Path, model_cfg: ModelConfig, roots: dict[str, Path]) -> Path:
    """Write a checkpoint of an untrained decoder with the encoders' identity (for throughput only)."""
    model = build_model(model_cfg)
    configs = {"data": to_dict(DataConfig(roots={c: str(r) for c, r in roots.items()})), "model": to_dict(model.cfg), "train": to_dict(TrainConfig())}
    return save_checkpoint(path, {"decoder": model.decoder.state_dict(), "epoch": 0, "configs": configs, "encoders": model.identity, "metrics": {}})


def bench_predict(images: list[Path], model_cfg: ModelConfig, roots: dict[str, Path], batch_sizes: Sequence[int], device: torch.device, work: Path,
                  amp: bool = True) -> dict[str, Any]:
    """Images/s of Segmenter.predict one image per call vs batched, with peak memory of the largest batch."""
    from textseg.predictor import Segmenter

    ckpt = untrained_checkpoint(work / f"untrained_{model_cfg.decoder}.pt", model_cfg, roots)
    seg = Segmenter.from_checkpoint(ckpt, device=str(device), amp=amp)
    prompt = canonical_prompt("crack")
    seg.predict(images[:1], prompt, batch_size=1)  # warm-up: prompt encoding, allocator
    single = timed(lambda: [seg.predict([p], prompt, batch_size=1) for p in images], device)
    rows = {1: single}
    memory = None
    for bs in batch_sizes:
        with PeakMemory(device) as memory:
            rows[bs] = timed(lambda: seg.predict(images, prompt, batch_size=bs), device)
    return {"decoder": model_cfg.decoder, "images": len(images), "seconds": rows, "memory": memory}


# ---- 4: quality -------------------------------------------------------------------------------
def run_quality(
    roots: dict[str, Path], decoders: Sequence[str], minutes: float, device: str, out_dir: Path, seed: int, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """`textseg train` each decoder with --max-minutes (+ `extra` options, defaults otherwise), then evaluate best.pt on the held-out split."""
    from textseg.evaluate import evaluate
    from textseg.predictor import Segmenter

    results = {}
    for name in decoders:
        run = out_dir / name
        cmd = [sys.executable, "-m", "textseg", "train", *[a for c, r in roots.items() for a in ("--data", f"{c}={r}")],
               "--out", str(run), "--decoder", name, "--max-minutes", str(minutes), "--device", device, "--seed", str(seed), *extra]
        print("$", " ".join(cmd), flush=True)
        tic = time.monotonic()
        subprocess.run(cmd, check=True, cwd=REPO)
        train_s = time.monotonic() - tic
        best = load_checkpoint(run / "best.pt")
        epochs = len(read_history(run))
        report = evaluate(Segmenter.from_checkpoint(run / "best.pt", device=device), roots, "valid", run / "eval")
        results[name] = {"report": report, "train_s": train_s, "epochs": epochs, "best_epoch": int(best["epoch"]), "run": run, "config": run_config(best)}
    return results


def decoder_widths(model: ModelConfig) -> str:
    """The decoder's size settings: its width, and for refine the branch's width and space-to-depth fold."""
    if model.decoder == "refine" and model.pixel_encoder != "none":
        return f"width {model.dim}, refine width {model.refine_width} over {model.pixel_encoder} ({model.pixel_weights}), queries {model.resolved().queries}"
    refine = f", refine width {model.refine_width}, fold {model.refine_fold}" if model.decoder == "refine" else ""
    return f"width {model.dim}{refine}"


def run_config(ckpt: dict[str, Any]) -> str:
    """A quality run's settings as its checkpoint records them, so the table says what ran whatever options were passed."""
    data, model, train = checkpoint_configs(ckpt)
    return (
        f"{decoder_widths(model)}; input {data.image_size} px, pixel encoder lr x{train.pixel_lr_scale:g}; "
        f"lr {train.lr:g} {train.lr_schedule}, weight decay {train.weight_decay:g}, batch {train.batch_size}, at most {train.epochs} epochs; "
        f"negative rate {data.negative_rate:g}, augmentation {'on' if data.augment else 'off'}, EMA {train.ema_decay:g}, "
        f"{'mixed precision where the hardware has it' if train.amp else '--no-amp (float32)'}"
    )


# ---- report -----------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    """'met' or 'not met'."""
    return "met" if ok else "**not met**"


def training_markdown(res: dict[str, Any], batch_size: int) -> str:
    """Table of epoch times per decoder, with the cache fill and the targets."""
    fill = res["fill"]
    lines = [
        f"Training epoch: {res['images']} images, batch {batch_size}; cache fill ({res['images']} images x {res['flips']} flips "
        f"+ all prompts, once per run) **{fill.wall:.1f} s** wall ({fill.cpu:.1f} s CPU). Cached and bare: min over repeats; "
        "uncached: once. Each ratio from wall time, then from this process's CPU time (less disturbed by other load on the machine).",
        "",
        "| decoder | params (M) | uncached epoch s (CPU s) | cached epoch s (CPU s) | bare decoder compute s (CPU s) "
        "| uncached / cached: wall, CPU | >= 4x | cached / bare: wall, CPU | <= 1.2x | loading + cache lookups s (CPU s), share of bare | cache pays off after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, d in res["decoders"].items():
        un, ca, ba, lu = d["uncached"], d["cached"], d["bare"], d["lookup"]
        speedup = (un.wall / ca.wall, un.cpu / ca.cpu)
        overhead = (ca.wall / ba.wall, ca.cpu / ba.cpu)
        saved = un.wall - ca.wall
        payoff = f"{fill.wall / saved:.1f} epochs" if saved > 0 else "never"
        lines.append(
            f"| {name} | {d['parameters_m']:.2f} | {un.wall:.2f} ({un.cpu:.2f}) | {ca.wall:.2f} ({ca.cpu:.2f}) | {ba.wall:.2f} ({ba.cpu:.2f}) | "
            f"{speedup[0]:.2f}x, {speedup[1]:.2f}x | {verdict(speedup[0] >= TARGET_CACHE_SPEEDUP)}, {verdict(speedup[1] >= TARGET_CACHE_SPEEDUP)} | "
            f"{overhead[0]:.2f}x, {overhead[1]:.2f}x | {verdict(overhead[0] <= TARGET_CACHE_OVERHEAD)}, {verdict(overhead[1] <= TARGET_CACHE_OVERHEAD)} | "
            f"{lu.wall:.2f} ({lu.cpu:.2f}), {lu.wall / ba.wall:.0%} | {payoff} |"
        )
    return "\n".join(lines) + "\n"


def predict_markdown(results: list[dict[str, Any]], device: torch.device) -> str:
    """Table of prediction throughput, one row per decoder and batch size."""
    target = f">= {TARGET_BATCHED_SPEEDUP:g}x (CPU)"
    lines = ["Prediction (`Segmenter.predict`, untrained decoder; image decoding and upsampling to the original size included). "
             "Ratio from wall time, then from CPU time:", "",
             f"| decoder | images | batch | seconds (CPU s) | images/s | vs one at a time: wall, CPU | {target} |", "|---|---|---|---|---|---|---|"]
    for r in results:
        single = r["seconds"][1]
        for bs, t in r["seconds"].items():
            ratio = (single.wall / t.wall, single.cpu / t.cpu)
            on_cpu = device.type == "cpu"
            mark = "" if bs == 1 else (", ".join(verdict(x >= TARGET_BATCHED_SPEEDUP) for x in ratio) if on_cpu else "n/a (not CPU)")
            lines.append(f"| {r['decoder']} | {r['images']} | {bs} | {t.wall:.2f} ({t.cpu:.2f}) | {r['images'] / t.wall:.2f} | {ratio[0]:.2f}x, {ratio[1]:.2f}x | {mark} |")
    return "\n".join(lines) + "\n"


def memory_markdown(memory: dict[str, PeakMemory]) -> str:
    """Table of peak memory per phase."""
    cuda = any(m.cuda_mib is not None for m in memory.values())
    exact = all(m.exact for m in memory.values())
    note = "resident set peak within each phase (VmHWM reset before it; includes the encoders and the feature cache held by then)" if exact else "process peak RSS so far (ru_maxrss; no per-phase reset on this OS)"
    lines = [f"Peak memory: {note}.", "", "| phase | peak RSS (MiB) |" + (" CUDA max allocated (MiB) |" if cuda else ""),
             "|---|---|" + ("---|" if cuda else "")]
    for phase, m in memory.items():
        lines.append(f"| {phase} | {m.rss_mib:.0f} |" + (f" {m.cuda_mib:.0f} |" if cuda else ""))
    return "\n".join(lines) + "\n"


def quality_markdown(results: dict[str, Any], minutes: float, roots: dict[str, Path], extra: Sequence[str] = ()) -> str:
    """Table of held-out IoU per class and negative-prompt FP rate per decoder."""
    where = ", ".join(f"{c}={r}" for c, r in roots.items())
    options = "".join(f" {a}" for a in extra)
    lines = [
        f"Quality: `textseg train --decoder D --max-minutes {minutes:g}{options}` (random ViT and CLIP, other settings default) on {where}; "
        f"`textseg.evaluate` of best.pt on the held-out `valid` split (carved from train by photo group), thresholds {thresholds_text()}, at each photo's size. "
        f"Targets for the default decoder: crack IoU >= {TARGETS['crack']:.2f}, taping IoU >= {TARGETS['taping']:.2f}, "
        f"negative-prompt FP <= {TARGETS['wrong_prompt']:.0%}.",
        "",
        "| decoder | epochs run | best epoch | train (min) | " + " | ".join(f"{c} IoU (n)" for c in CLASSES) + " | negative-prompt FP | "
        + " | ".join(f"FP {c}" for c in CLASSES) + " | config (from best.pt) |",
        "|---|---|---|---|" + "---|" * (2 * len(CLASSES) + 2),
    ]
    for name, r in results.items():
        rep = r["report"]
        ious = " | ".join(f"{rep['classes'][c]['iou']:.3f} ({rep['classes'][c]['n_images']})" if c in rep["classes"] else "-" for c in CLASSES)
        fps = " | ".join(f"{rep['negative_fp_rate_per_class'][c]:.1%}" if c in rep["negative_fp_rate_per_class"] else "-" for c in CLASSES)
        lines.append(f"| {name} | {r['epochs']} | {r['best_epoch']} | {r['train_s'] / 60:.1f} | {ious} | {rep['negative_fp_rate']:.1%} | {fps} | {r['config']} |")
    return "\n".join(lines) + "\n"


def append_results(path: Path, section: str) -> None:
    """Append a section to the results file (creating it with a title)."""
    if not path.exists():
        path.write_text("# textseg benchmark results\n\nAppended by `python benchmarks/bench.py`; newest last. See benchmarks/README.md.\n")
    with path.open("a") as f:
        f.write("\n" + section)


# ---- main -------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", action="append", metavar="CLASS=ROOT", help="dataset root per class (default: ../shared/data/roboflow-sample if present, else data/sample)")
    p.add_argument("--images", type=int, default=None, help=f"train images, split over classes, for the epoch benchmark (default {BENCH_IMAGES}) and, when given, for the quality run too (default: all); 0: all")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size (default 32)")
    p.add_argument("--repeats", type=int, default=2, help="timed repeats of the cached and bare epochs; the minimum is reported (default 2)")
    p.add_argument("--predict-images", type=int, default=16, help="images for the prediction benchmark (default 16)")
    p.add_argument("--predict-batch-sizes", type=int, nargs="+", default=[8, 16], help="batched prediction sizes (default 8 16)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto (default cpu)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-speed", action="store_true", help="skip benchmarks 1-3 (with --quality: only the quality run)")
    p.add_argument("--quality", action="store_true", help="also train seed and refine with --max-minutes and evaluate them (long)")
    p.add_argument("--quality-minutes", type=float, default=55.0, help="--max-minutes of each quality training run (default 55)")
    p.add_argument("--quality-decoders", nargs="+", choices=DECODERS, default=list(DECODERS), help="decoders the quality run trains, one after the other (default: seed refine)")
    p.add_argument("--no-amp", dest="amp", action="store_false", help="speed benchmarks in float32 (default: the training default, bf16 autocast where the hardware has it)")
    p.add_argument("--quality-train-arg", action="append", default=[], metavar="OPTION", help="extra option for the quality runs' textseg train, e.g. --quality-train-arg=--augment (repeatable)")
    p.add_argument("--quality-out", type=Path, default=None, help="run folder of the quality runs (default outputs/bench/quality-<time>)")
    p.add_argument("--results", type=Path, default=REPO / "benchmarks" / "RESULTS.md", help="markdown file to append to")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print them and append them to the results file."""
    args = parse_args(argv)
    device = resolve_device(args.device)
    roots = parse_data_specs(args.data) if args.data else default_roots()
    stamp = datetime.datetime.now(datetime.timezone.utc)
    # no hub here; timings do not depend on weights. ViT queries: this benchmark measures the ViT feature cache
    model_cfg = ModelConfig(visual_weights="random", text_weights="random", queries="vit")
    bench_images = BENCH_IMAGES if args.images is None else args.images or None
    settings = (
        f"Settings: data {', '.join(f'{c}={r}' for c, r in roots.items())}; encoders {model_cfg.visual_model} + CLIP {model_cfg.text_model} "
        f"({model_cfg.visual_weights} weights); decoder {decoder_widths(model_cfg)} (speed benchmarks; "
        "each quality run's own settings are in its row); "
        f"default decoder {model_cfg.decoder}; training augmentation {'on' if DataConfig().augment else 'off'}, "
        f"EMA decay {TrainConfig().ema_decay}; autocast {amp_dtype(device, args.amp) or 'off (float32)'}; seed {args.seed}."
    )
    parts = [f"## {stamp:%Y-%m-%d %H:%M} UTC\n", f"Machine: {machine_line(device)}.\n", settings + "\n"]
    print("\n".join(parts), flush=True)
    with tempfile.TemporaryDirectory(prefix="textseg-bench-") as tmp:
        if not args.skip_speed:
            train_samples = pick_samples(collect_split(roots, "train", DataConfig().val_fraction, args.seed), bench_images, args.seed)
            train_res = bench_training(train_samples, model_cfg, args.batch_size, device, args.repeats, args.seed, args.amp)
            text = training_markdown(train_res, args.batch_size)
            print(text, flush=True)
            parts.append(text)
            images = [s.image for s in pick_samples(collect_split(roots, "valid", DataConfig().val_fraction, args.seed), args.predict_images, args.seed)]
            pred_res = [bench_predict(images, dataclasses.replace(model_cfg, decoder=d), roots, args.predict_batch_sizes, device, Path(tmp), args.amp) for d in DECODERS]
            text = predict_markdown(pred_res, device)
            print(text, flush=True)
            parts.append(text)
            memory = dict(train_res["memory"])
            memory.update({f"{r['decoder']}: predict batch {max(args.predict_batch_sizes)}": r["memory"] for r in pred_res})
            text = memory_markdown(memory)
            print(text, flush=True)
            parts.append(text)
        if args.quality:
            out = args.quality_out or REPO / "outputs" / "bench" / f"quality-{stamp:%Y%m%d-%H%M%S}"
            q_roots = subset_roots(roots, args.images, out / "data", args.seed) if args.images else roots
            q_res = run_quality(q_roots, args.quality_decoders, args.quality_minutes, args.device, out, args.seed, args.quality_train_arg)
            text = quality_markdown(q_res, args.quality_minutes, q_roots, args.quality_train_arg)
            print(text, flush=True)
            parts.append(text)
            (out / "quality.json").write_text(json.dumps({k: {**v, "run": str(v["run"])} for k, v in q_res.items()}, indent=2, default=str) + "\n")
    append_results(args.results, "\n".join(parts))
    print(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
