"""Millimetres from a marker, and widths read from the photo (issue 41): accuracy on drawn walls, stability on real
photos, and what the marker and the visible widths add to `textseg inspect --tile` on a 12 MP photo.

- accuracy: a drawn wall (textseg.data.scenes: an ArUco marker, three dark bands of known length and width)
  photographed head-on and ever more steeply, measured with masks that trace the bands and with masks grown all
  round; errors against the drawing, and against one scale for the whole photo (the marker's, at the marker);
- real photos: on held-out crack photos (the validation carve, never trained on, and the four test photos), with
  the label masks and the model's masks: is the visible width narrower than the mask's, and how much does it move
  when the mask is grown or shrunk by a few pixels;
- speed: `textseg.inspection.inspect_photos` (tiled) on a 12 MP photo with a marker in it, with the marker and the
  visible widths against without both (`--no-visible`, no `--marker`), alternated, side by side.

    python benchmarks/bench_marker.py --ckpt outputs/runs/main/best.pt

Results are appended to benchmarks/RESULTS.md with the machine and settings.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import REAL_SAMPLE, VENDORED_SAMPLE, append_results, machine_line  # noqa: E402
from textseg.data.datasets import collect_split, load_target  # noqa: E402
from textseg.data.images import load_image  # noqa: E402
from textseg.data.scenes import Wall, fattened, marker_image, photograph  # noqa: E402
from textseg.inspection import MeasureSettings, inspect_photos  # noqa: E402
from textseg.measure import MarkerSpec, Plane, find_plane, measure_mask  # noqa: E402
from textseg.measure.stability import width_drift  # noqa: E402
from textseg.predictor import Segmenter, Tiling  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TILTS = (0.0, 0.2, 0.35, 0.5, 0.6)
FAT = (0, 4, 8)  # px grown all round; 0 = the traced mask
SHIFTS = (-4, -2, 2, 4)  # px the real masks are grown (+) or shrunk (-) by
TARGET_SPEED = 1.15


def accuracy() -> str:
    """Errors per tilt and mask, largest over the three bands."""
    wall = Wall()
    rows = ["| tilt | scale across the photo | mask | length error (photo / mask) | mask width error | "
            "visible width error (mean / max) | one scale for the photo: length / width error |", "|---|---|---|---|---|---|---|"]
    reference: dict[int, list] = {}
    spread: list[float] = []
    for tilt in TILTS:
        photo = photograph(wall, tilt=tilt)
        gray = cv2.cvtColor(photo.image, cv2.COLOR_RGB2GRAY)
        plane = find_plane(gray, MarkerSpec(wall.marker_side_mm))
        low, high = plane.source["mm_per_px_range"]
        one = Plane.uniform(plane.source["mm_per_px_at_marker"])
        for fat in FAT:
            found = [measure_mask(fattened(m, fat) if fat else m, plane=plane, photo=photo.image)[0] for m in photo.masks]
            naive = [measure_mask(fattened(m, fat) if fat else m, plane=one, photo=photo.image)[0] for m in photo.masks]
            bands = wall.bands
            seen_len = max(abs(d.visible_length / b.length_mm - 1) for d, b in zip(found, bands))
            mask_len = max(abs(d.length_mm / b.length_mm - 1) for d, b in zip(found, bands))
            mask_w = max(abs(d.mean_width_mm - b.width_mm) for d, b in zip(found, bands))
            vis_w = max(abs(d.visible_width - b.width_mm) for d, b in zip(found, bands))
            vis_max = max(abs(d.visible_max_width - b.width_mm) for d, b in zip(found, bands))
            one_len = max(abs(d.visible_length / b.length_mm - 1) for d, b in zip(naive, bands))
            one_w = max(abs(d.visible_width / b.width_mm - 1) for d, b in zip(naive, bands))
            if tilt == 0.0:
                reference[fat] = found
            spread += [abs(d.visible_length / r.visible_length - 1) for d, r in zip(found, reference[fat])]
            spread += [abs(d.visible_width / r.visible_width - 1) for d, r in zip(found, reference[fat])]
            mask = "traced" if not fat else f"grown {fat} px"
            rows.append(f"| {tilt:.2f} | {high / low:.2f}x | {mask} | {100 * seen_len:.1f}% / {100 * mask_len:.1f}% | "
                        f"{mask_w:.2f} mm{'' if not fat else ' (the mask is wider)'} | {vis_w:.2f} / {vis_max:.2f} mm | "
                        f"{100 * one_len:.0f}% / {100 * one_w:.0f}% |")
    note = (f"\nBands {', '.join(f'{b.width_mm:g} mm x {b.length_mm:.0f} mm' for b in wall.bands)}; marker "
            f"{wall.marker_side_mm:g} mm; photos 1200x900. Targets: length within 3%, widths within max(0.2 mm, 10%), "
            f"head-on and steep within 3% of each other: largest difference {100 * max(spread):.1f}%.\n")
    return "\n".join(rows) + "\n" + note


def real_photos(seg: Segmenter | None, limit: int) -> str:
    """Visible against mask widths on held-out crack photos, and the visible width's drift under grown/shrunk masks:
    per photo (all its defects) and for its longest defect alone."""
    root = REAL_SAMPLE if REAL_SAMPLE.is_dir() else VENDORED_SAMPLE
    samples = collect_split({"crack": root / "cracks"}, "valid")[:limit]
    test = sorted((root / "cracks" / "test").glob("*.jpg"))
    photos = [(s.image, load_target(s)) for s in samples]
    kinds = {"label": photos}
    if seg is not None:
        preds = seg.predict([p for p, _ in photos] + test, "segment crack", batch_size=8)
        kinds["model"] = [(Path(p.source), p.mask) for p in preds]
    rows = ["| masks | measured | photos with a seen valley | visible < mask width | visible / mask width (median) | "
            + " | ".join(f"drift at {s:+d} px (median / max)" for s in SHIFTS)
            + " | within 10% at every shift | within max(10%, 0.5 px) at every shift |", "|" + "---|" * (7 + len(SHIFTS))]
    for kind, items in kinds.items():
        found = {"per photo": [], "longest defect": []}
        for path, mask in items:
            rgb = load_image(path, upright=True)
            if mask.shape == rgb.shape[:2] and mask.any():
                found["per photo"].append(width_drift(mask, rgb, SHIFTS))
                found["longest defect"].append(width_drift(mask, rgb, SHIFTS, longest=True))
        rows += [_drift_row(f"{kind} ({len(items)})", unit, drifts) for unit, drifts in found.items()]
    return ("\n".join(rows) + f"\n\nPhotos: the first {limit} of the crack validation carve ({root.name}), plus the four "
            "test photos for the model. Per photo: the length-weighted mean visible width of its defects (px); longest "
            "defect: that of the photo's longest defect alone, at each shift.\n")


def _drift_row(masks: str, unit: str, found: list[dict[int, tuple[float | None, float | None]]]) -> str:
    """One table row from width_drift results: how many saw a valley, visible against mask width, drift per shift."""
    base, ratio, drifts = [], [], {s: [] for s in SHIFTS}
    for widths in found:
        width, mask_width = widths[0]
        if width is None:
            continue
        base.append(width)
        ratio.append(width / mask_width)
        for s in SHIFTS:
            other = widths[s][0]
            drifts[s].append(np.nan if other is None else abs(other / width - 1))
    d = {s: np.asarray(v) for s, v in drifts.items()}
    stable = np.all([np.nan_to_num(v, nan=1.0) <= 0.10 for v in d.values()], axis=0)
    loose = np.all([np.nan_to_num(v, nan=1.0) <= np.maximum(0.10, 0.5 / np.asarray(base)) for v in d.values()], axis=0)
    narrower = int(np.sum(np.asarray(ratio) < 1.0))
    return (f"| {masks} | {unit} | {len(base)} | {narrower}/{len(base)} | {np.median(ratio):.2f} | "
            + " | ".join(f"{100 * np.nanmedian(v):.1f}% / {100 * np.nanmax(v):.0f}%" for v in d.values())
            + f" | {int(stable.sum())}/{len(base)} | {int(loose.sum())}/{len(base)} |")


def speed(seg: Segmenter, repeats: int) -> str:
    """`inspect_photos` on a 12 MP photo with a marker, with the marker and visible widths against without."""
    root = REAL_SAMPLE if REAL_SAMPLE.is_dir() else VENDORED_SAMPLE
    base = load_image(sorted((root / "cracks" / "test").glob("*.jpg"))[0], upright=True)
    photo = np.asarray(Image.fromarray(base).resize((4000, 3000), Image.BICUBIC)).copy()
    tag = marker_image(320)
    photo[2550 : 2550 + tag.shape[0], 3450 : 3450 + tag.shape[1]] = tag[..., None]
    settings = {"without": MeasureSettings(visible=False), "with": MeasureSettings(marker=MarkerSpec(50.0))}
    times: dict[str, list[float]] = {k: [] for k in settings}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wall.png"
        Image.fromarray(photo).save(path)
        tiling = Tiling(640)
        inspect_photos(seg, [path], "segment crack", Path(tmp) / "warm", settings=settings["without"], tiling=tiling)
        for _ in range(repeats):
            for name, st in settings.items():
                start = time.perf_counter()
                report = inspect_photos(seg, [path], "segment crack", Path(tmp) / name, settings=st, tiling=tiling)
                times[name].append(time.perf_counter() - start)
                if name == "with":
                    assert report.images[0]["scale"]["source"] == "marker", report.images[0]["scale"]
    ratio = min(times["with"]) / min(times["without"])
    return ("| `inspect --tile`, 4000x3000 photo | without marker and visible widths | with both | ratio | target |\n"
            "|---|---|---|---|---|\n"
            f"| best of {repeats} | {min(times['without']):.2f} s | {min(times['with']):.2f} s | {ratio:.3f}x | "
            f"<= {TARGET_SPEED}x: {'met' if ratio <= TARGET_SPEED else 'NOT met'} |\n"
            f"| median | {np.median(times['without']):.2f} s | {np.median(times['with']):.2f} s | "
            f"{np.median(times['with']) / np.median(times['without']):.3f}x | |\n\n"
            "The photo is a 640-px test photo upsampled to 12 MP with a 50 mm marker pasted in, so its crack is about six "
            "times wider in pixels than in a real 12 MP photo; the visible width's cost follows the mask's length.\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", type=Path, default=None, help="a checkpoint: real-photo rows with its masks, and the speed rows")
    p.add_argument("--photos", type=int, default=40, help="validation photos for the real-photo rows")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    args = p.parse_args()
    seg = Segmenter.from_checkpoint(args.ckpt, device="cpu") if args.ckpt else None
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"## {stamp}: millimetres from a marker, widths from the photo (`benchmarks/bench_marker.py`)\n",
             f"Machine: {machine_line(torch.device('cpu'))}. Checkpoint: {args.ckpt or 'none (label masks only)'}.\n",
             "### Drawn walls: errors against the drawing\n", accuracy(),
             "### Real photos: visible width against the mask's\n", real_photos(seg, args.photos)]
    if seg is not None:
        parts += ["### Speed\n", speed(seg, args.repeats)]
    section = "\n".join(parts)
    print(section)
    if not args.no_append:
        append_results(RESULTS, section)


if __name__ == "__main__":
    main()
