"""Inspection benchmarks: where prediction time goes, tiled cost per megapixel, measurement cost, tile scale.

Speed (one run, ratios within it), on real photos with a trained or untrained checkpoint:
- end to end (read, encode, decode, resize, write mask and overlay: `textseg predict`'s loop; and with masks only,
  `--no-overlay`) against the bare forward of the same model (`Segmenter._forward`) on the same batches, already in
  tensors: each run against the bare forwards timed just before and after it, the median over repeats;
- tiled prediction time per megapixel at 1, 4 and 12 MP (one real photo resized; `--tile-size` photo pixels per tile);
- measurement (`textseg.measure.measure_mask`) of each tiled prediction against the prediction's time;
- what measuring adds as the commands run it: `textseg inspect` against `textseg predict --tile` on a few 4 MP photos.

Batching (`--ckpt CK --batching 1 8 32`, in place of the speed ratios): time per photo of the bare forward and of
end to end (masks only) at each batch size, against the smallest; worth measuring on a GPU, where the model is not
compute-bound at batch 1.

Tile scale (`--tile-sweep RUN [RUN ...]`): IoU per class on each run's own validation carve when each
640-px photo is predicted whole and in tiles of 448, 320 and 224 photo pixels (the model then sees the
defects 1.43x, 2x and 2.86x larger than in training, with the photo's real detail, not upsampled).

    python benchmarks/bench_inspect.py --ckpt outputs/q/seed0/refine/best.pt
    python benchmarks/bench_inspect.py --tile-sweep outputs/q/seed0/refine outputs/q/seed1/refine outputs/q/seed2/refine

Results are appended to benchmarks/RESULTS.md with the machine and settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import REAL_SAMPLE, VENDORED_SAMPLE, append_results, machine_line, sync  # noqa: E402
from textseg.data.datasets import collect_split, load_target  # noqa: E402
from textseg.data.images import load_image  # noqa: E402
from textseg.engine.runtime import autocast  # noqa: E402
from textseg.inspection import inspect_photos  # noqa: E402
from textseg.measure import measure_mask  # noqa: E402
from textseg.metrics import MetricAccumulator  # noqa: E402
from textseg.batch_io import background_workers, predict_files, write_predictions  # noqa: E402
from textseg.predictor import TILE_SIZE, Segmenter, Tiling  # noqa: E402
from textseg.prompts import canonical_prompt, threshold_for, thresholds_text  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TARGET_OVERHEAD = 1.15  # end to end / bare forward
TARGET_MP_GROWTH = 1.15  # seconds per MP at 12 MP / at 1 MP
TARGET_MEASURE = 0.10  # measurement / tiled prediction, per photo
MEGAPIXELS = (1, 4, 12)
PIPELINE_MP = 4
PIPELINE_PHOTOS = 4
SWEEP_TILES = (640, 448, 320, 224)


def crack_photos(n: int) -> list[Path]:
    """n real crack photos (the shared sample, else the vendored one), sorted by name."""
    root = REAL_SAMPLE / "cracks" if REAL_SAMPLE.is_dir() else VENDORED_SAMPLE / "cracks"
    photos = sorted((root / "train" / "images").glob("*.jpg"))
    if len(photos) < n:
        raise SystemExit(f"{root}: {len(photos)} photos, need {n}")
    return photos[:n]


def photo_size(megapixels: float) -> tuple[int, int]:
    """(width, height) of a 4:3 photo of about this many megapixels."""
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    return width, int(round(width * 3 / 4))


def time_end_to_end(seg: Segmenter, photos: list[Path], prompt: str, batch_size: int, out: Path, with_overlay: bool = True,
                    tiling: Tiling | None = None) -> float:
    """Seconds for textseg predict's loop: read, encode, decode, upsample, write the mask (and the overlay)."""
    failed: list[str] = []
    start = time.perf_counter()
    results = predict_files(seg, photos, prompt, None, batch_size, tiling, failed)
    for _ in write_predictions(results, out, with_overlay, background_workers(tiling)):
        pass
    return time.perf_counter() - start


def time_bare_forward(seg: Segmenter, photos: list[Path], prompt: str, batch_size: int) -> float:
    """Seconds for the model's forward alone on the same batches, inputs already tensors on the device."""
    # Without their stored pixel-encoder features, so the timed forward runs the pixel encoder as encoding does.
    batches = [[dataclasses.replace(e, features=None) for e in seg.encode_images(photos[i : i + batch_size])]
               for i in range(0, len(photos), batch_size)]
    start = time.perf_counter()
    for encoded in batches:
        if seg.visual is not None:  # the encode of the end-to-end loop runs the ViT: count it here too
            with autocast(seg.device, seg.dtype):
                seg.visual(torch.stack([e.image for e in encoded]))
        seg._forward(encoded, [prompt] * len(encoded))
    sync(seg.device)  # CUDA queues the work: wait for it
    return time.perf_counter() - start


def pipeline_row(seg: Segmenter, photos: list[Path], prompt: str, tiling: Tiling, repeats: int) -> str:
    """What measuring adds to a folder of photos as the commands run it: `textseg inspect` (predict, measure in the
    background, labelled overlays, report) against `textseg predict --tile` on the same photos at PIPELINE_MP."""
    width, height = photo_size(PIPELINE_MP)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = []
        for i, photo in enumerate(photos):
            paths.append(folder / f"photo{i}.jpg")
            Image.open(photo).convert("RGB").resize((width, height), Image.BICUBIC).save(paths[-1], quality=95)
        runs: dict[str, list[float]] = {"predict": [], "inspect": []}
        for k in range(repeats):
            runs["predict"].append(time_end_to_end(seg, paths, prompt, tiling.batch_size, folder / f"p{k}", tiling=tiling))
            start = time.perf_counter()
            inspect_photos(seg, paths, prompt, folder / f"i{k}", tiling=tiling, batch_size=tiling.batch_size)
            runs["inspect"].append(time.perf_counter() - start)
    predict, inspect = min(runs["predict"]), min(runs["inspect"])
    return (f"| `textseg inspect` vs `textseg predict --tile`, {len(photos)} photos of {width}x{height} ({PIPELINE_MP} MP) | "
            f"{inspect:.2f} s vs {predict:.2f} s | {inspect / predict:.2f}x | what measuring adds as the commands run (no target) |")


def speed(seg: Segmenter, photos: list[Path], batch_size: int, tile_size: int, repeats: int) -> str:
    """The three speed ratios as a markdown section."""
    prompt = canonical_prompt("crack")
    seg.encode_prompt(prompt)
    # Each end-to-end time is divided by the mean of the bare forwards timed just before and after it: on a
    # shared host the machine's speed drifts within seconds, and a ratio of two best-ofs taken minutes apart
    # moved by 0.1 between runs.
    ratios: dict[bool, list[float]] = {True: [], False: []}  # with overlay -> ratio per repeat
    times: dict[bool, list[float]] = {True: [], False: []}
    bares = []
    with tempfile.TemporaryDirectory() as tmp:
        time_end_to_end(seg, photos[:batch_size], prompt, batch_size, Path(tmp))  # warm-up
        bares.append(time_bare_forward(seg, photos, prompt, batch_size))
        for _ in range(repeats):
            for with_overlay in (True, False):
                times[with_overlay].append(time_end_to_end(seg, photos, prompt, batch_size, Path(tmp), with_overlay))
                bares.append(time_bare_forward(seg, photos, prompt, batch_size))
                ratios[with_overlay].append(times[with_overlay][-1] / ((bares[-2] + bares[-1]) / 2))
    rows = []
    for with_overlay, what in ((True, "mask PNGs and overlay JPEGs"), (False, "mask PNGs only, `--no-overlay`")):
        overhead = float(np.median(ratios[with_overlay]))
        rows.append(f"| end to end ({what}) vs bare forward ({len(photos)} photos of 640 px, batch {batch_size}) | "
                    f"{np.median(times[with_overlay]):.2f} s vs {np.median(bares):.2f} s | {overhead:.2f}x "
                    f"(range {min(ratios[with_overlay]):.2f}-{max(ratios[with_overlay]):.2f}) | "
                    f"<= {TARGET_OVERHEAD}x: {'met' if overhead <= TARGET_OVERHEAD else 'NOT met'} |")
    base = np.asarray(Image.open(photos[0]).convert("RGB"))
    per_mp, measure_share = {}, {}
    tiling = Tiling(tile_size, batch_size=batch_size)
    for mp in MEGAPIXELS:
        width, height = photo_size(mp)
        photo = np.asarray(Image.fromarray(base).resize((width, height), Image.BICUBIC))
        times, measures = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            prob = seg.tiled_probability(photo, prompt, tiling)
            times.append(time.perf_counter() - start)
            start = time.perf_counter()
            measure_mask(prob > threshold_for(prompt), "crack")
            measures.append(time.perf_counter() - start)
        per_mp[mp] = min(times) / (width * height / 1e6)
        measure_share[mp] = min(measures) / min(times)
        rows.append(f"| tiled, {width}x{height} ({mp} MP), tiles of {tile_size} px | {min(times):.2f} s, {per_mp[mp]:.2f} s/MP; "
                    f"measure {min(measures):.3f} s | measure / predict {measure_share[mp]:.3f} | "
                    f"<= {TARGET_MEASURE}: {'met' if measure_share[mp] <= TARGET_MEASURE else 'NOT met'} |")
    rows.append(pipeline_row(seg, photos[:PIPELINE_PHOTOS], prompt, tiling, repeats))
    growth = per_mp[MEGAPIXELS[-1]] / per_mp[MEGAPIXELS[0]]
    rows.append(f"| s/MP at {MEGAPIXELS[-1]} MP / at {MEGAPIXELS[0]} MP | {per_mp[MEGAPIXELS[-1]]:.2f} / {per_mp[MEGAPIXELS[0]]:.2f} "
                f"| {growth:.2f}x | <= {TARGET_MP_GROWTH}x: {'met' if growth <= TARGET_MP_GROWTH else 'NOT met'} |")
    return "\n".join(["| what | time | ratio | target |", "|---|---|---|---|", *rows]) + "\n"


def batching(seg: Segmenter, photos: list[Path], batch_sizes: list[int], repeats: int) -> str:
    """Time per photo at each batch size, bare forward and end to end (masks only), against the smallest batch."""
    prompt = canonical_prompt("crack")
    seg.encode_prompt(prompt)
    bare: dict[int, list[float]] = {b: [] for b in batch_sizes}
    e2e: dict[int, list[float]] = {b: [] for b in batch_sizes}
    with tempfile.TemporaryDirectory() as tmp:
        for b in batch_sizes:  # warm-up: kernels and allocator pools for every batch shape
            time_bare_forward(seg, photos[:b], prompt, b)
        for _ in range(repeats):  # interleaved, so drift reaches every batch size alike
            for b in batch_sizes:
                bare[b].append(time_bare_forward(seg, photos, prompt, b) / len(photos))
                e2e[b].append(time_end_to_end(seg, photos, prompt, b, Path(tmp), with_overlay=False) / len(photos))
    one = min(batch_sizes)
    lines = [f"| batch | bare forward (ms/photo) | vs batch {one} | end to end, masks only (ms/photo) | vs batch {one} |",
             "|---|---|---|---|---|"]
    for b in batch_sizes:
        lines.append(f"| {b} | {min(bare[b]) * 1e3:.1f} | {min(bare[one]) / min(bare[b]):.2f}x faster | "
                     f"{min(e2e[b]) * 1e3:.1f} | {min(e2e[one]) / min(e2e[b]):.2f}x faster |")
    return "\n".join(lines) + "\n"


def tile_sweep(runs: list[Path], device: str, limit: int | None) -> str:
    """IoU per class and tile size on each run's validation carve, as a markdown section."""
    results: dict[int, dict[str, list[float]]] = {t: {} for t in SWEEP_TILES}
    for run in runs:
        seg = Segmenter.from_checkpoint(run / "best.pt", device)
        dc = seg.data_cfg
        samples = collect_split(dc.roots, "valid", val_fraction=dc.val_fraction, seed=dc.carve_seed)
        samples = samples[:limit]
        acc = {t: {} for t in SWEEP_TILES}
        for sample in samples:
            rgb = load_image(sample.image)
            target = load_target(sample)
            prompt = canonical_prompt(sample.cls)
            for t in SWEEP_TILES:
                prob = seg.tiled_probability(rgb, prompt, Tiling(t))
                acc[t].setdefault(sample.cls, MetricAccumulator()).add(prob > threshold_for(prompt), target)
        for t in SWEEP_TILES:
            for cls, a in acc[t].items():
                results[t].setdefault(cls, []).append(a.summary()["iou"])
        print(f"{run}: " + ", ".join(f"{t}: " + " ".join(f"{c} {v[-1]:.3f}" for c, v in results[t].items()) for t in SWEEP_TILES), flush=True)
    classes = sorted({c for r in results.values() for c in r})
    lines = ["| tile (photo px) | zoom vs training | " + " | ".join(f"{c} IoU" for c in classes) + " |",
             "|---|---|" + "---|" * len(classes)]
    for t in SWEEP_TILES:
        cells = [f"{np.mean(results[t][c]):.3f} ± {np.std(results[t][c]):.3f} ({', '.join(f'{v:.3f}' for v in results[t][c])})" for c in classes]
        lines.append(f"| {t}{' (whole photo)' if t == 640 else ''} | {640 / t:.2f}x | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, help="checkpoint for the speed benchmark")
    parser.add_argument("--photos", type=int, default=32, help="real 640-px photos for end to end vs bare (default 32)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tile-size", type=int, default=TILE_SIZE)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batching", nargs="+", type=int, default=None, metavar="B",
                        help="with --ckpt: time batch sizes B against the smallest instead of the speed ratios (e.g. 1 8 32)")
    parser.add_argument("--tile-sweep", nargs="+", type=Path, default=None, metavar="RUN", help="run folders (RUN/best.pt)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many validation images per run (sweep)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not args.ckpt and not args.tile_sweep:
        parser.error("give --ckpt (speed) and/or --tile-sweep RUN ...")
    device = torch.device(args.device)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.ckpt:
        seg = Segmenter.from_checkpoint(args.ckpt, args.device)
        if args.batching:
            body = batching(seg, crack_photos(args.photos), sorted(args.batching), args.repeats)
            what = f"batching, {args.photos} real 640-px photos"
        else:
            body = speed(seg, crack_photos(args.photos), args.batch_size, args.tile_size, args.repeats)
            what = "inspection speed"
        section = (f"## {stamp}: {what} (`benchmarks/bench_inspect.py`)\n\n{machine_line(device)}; autocast "
                   f"{seg.dtype or 'off (float32)'}; checkpoint `{args.ckpt}`; {args.repeats} repeats (overhead: median of the "
                   f"paired ratios; other times: best of).\n\n{body}")
        print(section)
        append_results(args.results, section)
    if args.tile_sweep:
        body = tile_sweep(args.tile_sweep, args.device, args.limit)
        section = (f"## {stamp}: tile size on the validation carves (`benchmarks/bench_inspect.py --tile-sweep`)\n\n"
                   f"{machine_line(device)}; runs {', '.join(f'`{r}`' for r in args.tile_sweep)}; thresholds {thresholds_text()}, "
                   f"IoU from counts summed over each carve's images, mean ± std over runs (each run listed).\n\n{body}")
        print(section)
        append_results(args.results, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
