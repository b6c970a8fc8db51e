"""What the notebooks call beyond the public API: setup, data tables and figures, live training curves, attention
and evaluation figures. Each notebook imports this module as `nb`; the public API (textseg.predict, textseg.evaluate,
textseg.engine.train, textseg.viz) it calls directly.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import threading
from pathlib import Path
from typing import Any

from IPython.display import Markdown, display
from PIL import Image
from matplotlib.patches import Polygon, Rectangle
import matplotlib.pyplot as plt
import numpy as np

from textseg import CLASSES
from textseg.data.datasets import SPLITS, available_splits, collect_split, list_samples, load_target
from textseg.data.duplicates import find_near_duplicates
from textseg.data.images import image_size, load_image, load_mask, save_mask, save_rgb
from textseg.data.labels import extract_masks, parse_yolo_file, read_coco
from textseg.data.synth import ROOT_NAMES, generate
from textseg.engine.runs import RunDir, best_epoch
from textseg.engine.train import train
from textseg.evaluate import evaluate, report_thresholds
from textseg.measure import measure_mask
from textseg.predictor import Segmenter
from textseg.prompts import threshold_for, thresholds_text
from textseg.drawing import draw_outline, overlay
from textseg.viz import CLASS_COLORS, image_grid, plot_training_curves, save_figure  # noqa: F401 - also the notebooks' nb.save_figure
from textseg.workbook.playground import attention_heatmap, word_attention

logger = logging.getLogger(__name__)


def setup_notebook(figures_dir: str | Path = "figures") -> Path:
    """Work from the repository root (JupyterLab starts kernels in notebooks/), log INFO; returns figures dir."""
    here = Path.cwd()
    for candidate in (here, *here.parents):
        if (candidate / "notebooks").is_dir() and (candidate / "textseg").is_dir():
            os.chdir(candidate)
            break
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", force=True)
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    return figures


def show_markdown(text: str) -> None:
    """Display markdown in a notebook (plain text elsewhere)."""
    display(Markdown(text))


SMOKE_SYNTH_COUNTS = {"train": 4, "valid": 2, "test": 2}


def ensure_synth(synth_dir: str | Path, smoke: bool = False, seed: int = 0) -> dict[str, Path]:
    """The synthetic roots under synth_dir, generated first if missing (tiny counts when smoke)."""
    roots = {cls: Path(synth_dir) / name for cls, name in ROOT_NAMES.items()}
    if all((root / "train").is_dir() for root in roots.values()):
        return roots
    logger.info("no synthetic data in %s yet; generating it (textseg synth --out %s)", synth_dir, synth_dir)
    return generate(Path(synth_dir), seed=seed, counts=SMOKE_SYNTH_COUNTS if smoke else None, overwrite=True)


def copy_datasets(roots: dict[str, str | Path], dest: str | Path) -> dict[str, Path]:
    """Fresh working copies dest/NAME of dataset roots {NAME: ROOT} (sources stay untouched)."""
    out = {}
    for name, root in roots.items():
        target = Path(dest) / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(root, target)
        out[name] = target
    return out


def build_working_datasets(sources: dict[str, list[str | Path]], out: str | Path, val_fraction: float = 0.15,
                           seed: int = 0) -> dict[str, Path]:
    """Merge several roots per class into out/CLASS (images/ + masks/ per split), names prefixed by source.

    A source without valid/ contributes the photo-grouped part of its train split that
    `collect_split` holds back, so every merged root has a valid split with real photos in it.
    """

    merged = {}
    for cls, roots in sources.items():
        target = Path(out) / cls
        if target.exists():
            shutil.rmtree(target)
        for root in map(Path, roots):
            present = available_splits(root)
            tag = f"{root.parent.name}-{root.name}"
            for split in SPLITS:
                if split not in present and not (split == "valid" and "train" in present):
                    continue
                for s in collect_split({cls: root}, split, val_fraction, seed):
                    (target / split / "images").mkdir(parents=True, exist_ok=True)
                    shutil.copy2(s.image, target / split / "images" / f"{tag}__{s.image.name}")
                    save_mask(load_target(s), target / split / "masks" / f"{tag}__{s.image.stem}.png")
        merged[cls] = target
    return merged


def split_counts(roots: dict[str, str | Path]) -> str:
    """Markdown table of images and masks with foreground per class and split."""
    lines = ["| class | root | split | images | with foreground |", "|---|---|---|---:|---:|"]
    for cls, root in roots.items():
        for split in available_splits(root):
            samples = list_samples(root, split, cls)
            positives = sum(bool(load_target(s).any()) for s in samples)
            lines.append(f"| {cls} | {root} | {split} | {len(samples)} | {positives} |")
    return "\n".join(lines)


def dataset_statistics(sources: dict[str, dict[str, str | Path]]) -> list[dict[str, Any]]:
    """One row per image of {source name: {class: root}}: size, mask coverage and stroke widths."""
    rows = []
    for source, roots in sources.items():
        for cls, root in roots.items():
            for split in available_splits(root):
                for s in list_samples(root, split, cls):
                    mask = load_target(s)
                    width, height = image_size(s.image)
                    rows.append({"source": source, "class": cls, "split": split, "width": width, "height": height,
                                 "coverage": float(mask.mean()),
                                 "widths": np.array([d.mean_width_px for d in measure_mask(mask, cls)], np.float32)})
    return rows


def plot_statistics(rows: list[dict[str, Any]], path: str | Path | None = None) -> Any:
    """Four panels: image sizes, mask coverage histogram, crack widths, seam widths (real vs synthetic)."""
    groups = sorted({(r["source"], r["class"]) for r in rows})
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))
    styles = {"real": dict(marker="o", linestyle="-"), "synthetic": dict(marker="x", linestyle="--")}
    colours = {"crack": "tab:red", "taping": "tab:blue"}
    for source, cls in groups:
        part = [r for r in rows if r["source"] == source and r["class"] == cls]
        label, colour = f"{source} {cls} ({len(part)})", colours.get(cls, "gray")
        axes[0].scatter([r["width"] for r in part], [r["height"] for r in part], s=18, color=colour,
                        marker=styles.get(source, {}).get("marker", "o"), alpha=0.6, label=label)
        axes[1].hist([100 * r["coverage"] for r in part], bins=np.linspace(0, 60, 31), histtype="step", lw=1.8,
                     color=colour, linestyle=styles.get(source, {}).get("linestyle", "-"), density=True, label=label)
        widths = np.concatenate([r["widths"] for r in part]) if part else np.zeros(0)
        ax = axes[2] if cls == "crack" else axes[3]
        if widths.size:
            ax.hist(widths, bins=np.linspace(0, np.percentile(widths, 99) + 1, 40), histtype="step", lw=1.8, density=True,
                    color=colour, linestyle=styles.get(source, {}).get("linestyle", "-"),
                    label=f"{source} (median {np.median(widths):.0f} px)")
    titles = [("image sizes", "width (px)", "height (px)"), ("mask coverage", "foreground (% of pixels)", "density"),
              ("crack widths", "mean width per crack (px)", "density"), ("taping seam widths", "mean width per seam (px)", "density")]
    for ax, (title, xlabel, ylabel) in zip(axes, titles):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def sample_grid(roots: dict[str, str | Path], n: int, seed: int = 0) -> dict[str, list]:
    """Images, masks and titles of about n samples spread over the classes (seeded choice over all splits)."""
    rng = random.Random(seed)
    images, masks, titles = [], [], []
    for cls, root in roots.items():
        samples = [s for split in available_splits(root) for s in list_samples(root, split, cls)]
        for s in rng.sample(samples, min(len(samples), max(1, n // len(roots)))):
            mask = load_target(s)
            images.append(s.image)
            masks.append(mask)
            titles.append(f"{cls} {s.split}: {s.image.name[:22]}\n{mask.shape[1]}x{mask.shape[0]}, {mask.mean():.1%} fg")
    return {"images": images, "masks": masks, "titles": titles}


def duplicate_pairs(roots: dict[str, str | Path]) -> list[tuple[Path, Path, float]]:
    """Copies of one photo anywhere in the datasets (any split), found by content with the audit's matcher."""
    paths = [s.image for cls, root in roots.items() for split in available_splits(root) for s in list_samples(root, split, cls)]
    return find_near_duplicates(paths)


def pairs_table(pairs: list[tuple[Path, Path, float]]) -> str:
    """Markdown table of duplicate pairs (names, splits and distance)."""
    if not pairs:
        return "No copies of one photo found."
    lines = ["| a | b | distance |", "|---|---|---:|"]
    lines += [f"| {a.parent.name}/{a.name} | {b.parent.name}/{b.name} | {d:.3f} |" for a, b, d in pairs]
    return f"{len(pairs)} pairs of copies:\n\n" + "\n".join(lines)


def pairs_figure(pairs: list[tuple[Path, Path, float]], path: str | Path | None = None, credit: bool = True) -> Any:
    """Each duplicate pair side by side."""
    images = [p for a, b, _ in pairs for p in (a, b)]
    titles = [f"{p.name[:30]}" + (f"\ndistance {d:.2f}" if i % 2 else "") for a, b, d in pairs for i, p in enumerate((a, b))]
    return image_grid(images, titles=titles, ncols=2, suptitle="copies of one photo found by content", credit=credit,
                      path=path, tile_size=3.2)


def format_agreement(yolo_split: str | Path, coco_split: str | Path) -> str:
    """Markdown table: IoU between masks made from a YOLO export and a COCO export of the same photos."""
    lines = ["| image | YOLO mask px | COCO mask px | IoU |", "|---|---:|---:|---:|"]
    for mask_path in sorted((Path(yolo_split) / "masks").glob("*.png")):
        other = Path(coco_split) / "masks" / mask_path.name
        if other.is_file():
            a, b = load_mask(mask_path), load_mask(other)
            union = int((a | b).sum())
            iou = (a & b).sum() / union if union else 1.0
            lines.append(f"| {mask_path.stem[:40]} | {int(a.sum())} | {int(b.sum())} | {iou:.3f} |")
    return "\n".join(lines) if len(lines) > 2 else f"no image of {yolo_split} also in {coco_split}"


def label_figure(samples: list[Any], path: str | Path | None = None, credit: bool = True) -> Any:
    """For each sample: the image with its raw labels drawn (YOLO/COCO polygons and boxes), and the mask made from them."""
    fig, axes = plt.subplots(len(samples), 2, figsize=(7.5, 3.6 * len(samples)), squeeze=False)
    for row, s in zip(axes, samples):
        rgb = load_image(s.image)
        row[0].imshow(rgb)
        for kind, xy in label_shapes(s, rgb.shape[1], rgb.shape[0]):
            patch = Rectangle(xy[0], *(xy[1] - xy[0]), fill=False, color="yellow", lw=1.5) if kind == "box" else \
                Polygon(xy, closed=True, fill=False, color="yellow", lw=1.5)
            row[0].add_patch(patch)
        source = "YOLO" if s.label is not None else "COCO" if s.coco is not None else "mask"
        row[0].set_title(f"{source} labels: {s.image.name[:30]}", fontsize=8)
        row[1].imshow(overlay(rgb, load_target(s)))
        row[1].set_title("mask from the labels (red)", fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path, credit)


def label_shapes(sample: Any, width: int, height: int) -> list[tuple[str, np.ndarray]]:
    """A sample's raw label shapes in pixels: ("box", [[x0, y0], [x1, y1]]) or ("polygon", (N, 2))."""
    shapes: list[tuple[str, np.ndarray]] = []
    if sample.label is not None:
        for sh in parse_yolo_file(sample.label):
            if sh.kind == "box":
                cx, cy, w, h = sh.coords * [width, height, width, height]
                shapes.append(("box", np.array([[cx - w / 2, cy - h / 2], [cx + w / 2, cy + h / 2]])))
            else:
                shapes.append(("polygon", sh.coords * [width, height]))
    elif sample.coco is not None:
        export = read_coco(sample.coco)
        for ann in export.annotations[export.images[sample.image.name]["id"]]:
            seg = ann.get("segmentation")
            for poly in seg if isinstance(seg, list) and seg else []:
                shapes.append(("polygon", np.asarray(poly, dtype=float).reshape(-1, 2)))
            if not seg:
                x, y, w, h = ann["bbox"]
                shapes.append(("box", np.array([[x, y], [x + w, y + h]])))
    return shapes


def bad_label_checks(work: str | Path) -> list[str]:
    """Write three broken YOLO label files into a scratch dataset and return the errors extraction raises."""
    cases = {"odd-coordinates": "0 0.1 0.2 0.3 0.4 0.5\n", "not-a-number": "0 0.5 0.5 abc 0.2\n",
             "unknown-class": "7 0.5 0.5 0.2 0.2\n"}
    errors = []
    for name, text in cases.items():
        split = Path(work) / name / "train"
        save_rgb(np.full((32, 32, 3), 128, np.uint8), split / "images" / "wall.png")
        (split / "labels").mkdir(parents=True, exist_ok=True)
        (split / "labels" / "wall.txt").write_text(text)
        try:
            extract_masks(split.parent, class_map={"0": "crack"}, overwrite=True)
            errors.append(f"{name}: NOT caught")
        except ValueError as exc:
            errors.append(f"{name}: {exc}")
        if (split / "masks").exists() and any((split / "masks").iterdir()):
            errors.append(f"{name}: left a partial mask behind")
    return errors


# --- training with live curves ----------------------------------------------------------------------


def resume_checkpoint(run_dir: str | Path, resume: str) -> Path | None:
    """The checkpoint to continue: "" -> none, "last" -> RUN/last.pt, else the given path."""
    if not resume:
        return None
    path = RunDir(run_dir).last if resume == "last" else Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"resume={resume!r}: no checkpoint at {path}; use '', 'last' or a path to a .pt file")
    return path


def train_live(data_cfg: Any, model_cfg: Any, train_cfg: Any, run_dir: str | Path, resume: str = "",
               overwrite: bool = False, figure_path: str | Path | None = None, refresh_s: float = 5.0) -> dict[str, Any]:
    """Run `textseg.engine.train.train` in a thread while redrawing its loss/IoU curves from RUN/metrics.jsonl.

    A run already in run_dir is shown, not retrained, unless `overwrite` (start over) or `resume`
    ("last" or a checkpoint: continue it) say otherwise; so re-running the notebook is cheap.
    """


    run_dir = Path(run_dir)
    ckpt = resume_checkpoint(run_dir, resume)
    handle = None
    if ckpt is None and not overwrite and RunDir(run_dir).holds_run():
        logger.info("%s already holds a run; showing it (overwrite=True retrains, resume='last' continues it)", run_dir)
        history = RunDir(run_dir).history()
        summary = {"history": history, "best": best_epoch(history), "epochs_run": 0,
                   "stopped_early": False, "cache": history[-1].get("cache", {}), "elapsed_s": 0.0}
    else:
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["summary"] = train(data_cfg, model_cfg, train_cfg, run_dir, resume=ckpt, overwrite=overwrite)
            except BaseException as exc:  # re-raised in the notebook's thread below
                result["error"] = exc

        thread = threading.Thread(target=work, name="textseg-train", daemon=True)
        handle = display("waiting for the first epoch ...", display_id=True)
        shown = 0
        thread.start()
        while thread.is_alive():
            thread.join(refresh_s)
            shown = _refresh_curves(run_dir, handle, shown)
        if "error" in result:
            raise result["error"]
        summary = result["summary"]
    fig = plot_training_curves(run_dir, path=figure_path, title=f"training run {run_dir}")
    if handle is None:
        display(fig)
    else:
        handle.update(fig)  # the final curves replace the live ones
    plt.close(fig)
    return summary


def _refresh_curves(run_dir: Path, handle: Any, shown: int) -> int:
    """Redraw the curves in `handle` when metrics.jsonl gained epochs; returns the epochs shown."""
    epochs = len(RunDir(run_dir).history())
    if epochs > shown:
        fig = plot_training_curves(run_dir, title=f"training run {run_dir} (live, {epochs} epochs)")
        handle.update(fig)
        plt.close(fig)
    return max(epochs, shown)


def best_epoch_table(best: dict[str, Any], summary: dict[str, Any]) -> str:
    """Markdown table of the best epoch's validation metrics and how the run went."""
    ious = ", ".join(f"{c} {best[f'iou_{c}']:.3f}" for c in CLASSES if f"iou_{c}" in best)
    rows = [("best epoch", best.get("epoch")), ("train loss", f"{best.get('train_loss', float('nan')):.4f}"),
            ("validation loss", f"{best.get('val_loss', float('nan')):.4f}"), ("validation IoU", ious),
            ("negative-prompt false positives", f"{best.get('negative_fp_rate', float('nan')):.1%}"),
            ("epochs run now", summary.get("epochs_run")), ("stopped by max_minutes", summary.get("stopped_early")),
            ("minutes", f"{summary.get('elapsed_s', 0.0) / 60:.1f}")]
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def cache_table(cache: dict[str, int]) -> str:
    """Markdown table of feature-cache hits and misses with hit rates."""
    lines = ["| features | hits | misses | hit rate |", "|---|---:|---:|---:|"]
    for kind in ("visual", "text"):
        hits, misses = cache.get(f"{kind}_hits", 0), cache.get(f"{kind}_misses", 0)
        rate = f"{hits / (hits + misses):.1%}" if hits + misses else "-"
        lines.append(f"| {kind} | {hits} | {misses} | {rate} |")
    return "\n".join(lines)


# --- attention and evaluation ---------------------------------------------------------------------


def thumbnail(image: np.ndarray, max_side: int = 320) -> np.ndarray:
    """A uint8 (H, W, 3) or float (H, W) array shrunk so its longer side is at most max_side (for light figures)."""
    arr = np.asarray(image)
    scale = max_side / max(arr.shape[:2])
    if scale >= 1:
        return arr
    size = (max(1, round(arr.shape[1] * scale)), max(1, round(arr.shape[0] * scale)))
    if arr.dtype == np.uint8:
        return np.asarray(Image.fromarray(arr).resize(size, Image.BILINEAR))
    return np.asarray(Image.fromarray(arr.astype(np.float32), mode="F").resize(size, Image.BILINEAR))


def pick_examples(roots: dict[str, str | Path], split: str, per_class: int = 1, val_fraction: float = 0.15,
                  seed: int = 0, prefer: str = "") -> dict[str, list[Any]]:
    """Up to per_class samples of each class with a non-empty target, those whose name contains `prefer` first."""
    out = {}
    for cls, root in roots.items():
        samples = sorted(collect_split({cls: root}, split, val_fraction, seed), key=lambda s: prefer not in s.image.name)
        out[cls] = [s for s in samples if load_target(s).any()][:per_class]
        if not out[cls]:
            raise ValueError(f"{root}: no {cls} image with a non-empty mask in split {split!r}")
    return out


def prompt_swap_figure(segmenter: Any, sample: Any, prompts: list[str], path: str | Path | None = None,
                       threshold: float | None = None, credit: bool = True,
                       title: str = "the same image under prompts of both classes") -> tuple[Any, list[dict[str, float]]]:
    """One row per prompt on one image: probability, mask vs truth, attention to the prompt's words; each row says
    what the model takes its prompt to mean."""
    rgb, target = load_image(sample.image), load_target(sample)
    encoded = segmenter.encode_image(rgb)
    fig, axes = plt.subplots(len(prompts), 3, figsize=(11, 3.7 * len(prompts)), squeeze=False)
    rows = []
    for ax, prompt in zip(axes, prompts):
        pred = segmenter.predict_encoded(encoded, prompt, threshold=threshold, return_attention=True)
        im = ax[0].imshow(thumbnail(pred.prob), cmap="magma", vmin=0, vmax=1)
        fig.colorbar(im, ax=ax[0], fraction=0.046, pad=0.04, label="P(foreground)")
        ax[1].imshow(thumbnail(draw_outline(overlay(rgb, pred.mask), target)))
        ax[2].imshow(thumbnail(attention_heatmap(rgb, word_attention(pred.attention, pred.tokens))))
        fraction = float(pred.mask.mean())
        read = f"\nread as {pred.meaning.cls}" if pred.meaning is not None else ""
        ax[0].set_ylabel(f"prompt {prompt!r}{read}")
        ax[0].set_title(f"probability (max {pred.prob.max():.2f})", fontsize=9)
        ax[1].set_title(f"mask red ({fraction:.1%} of pixels), truth yellow", fontsize=9)
        ax[2].set_title("attention to the words, mean of heads", fontsize=9)
        for a in ax:
            a.set_xticks([])
            a.set_yticks([])
        rows.append({"prompt": prompt, "foreground_fraction": fraction, "mean_prob": float(pred.prob.mean()),
                     "meaning": None if pred.meaning is None else pred.meaning.cls})
    fig.suptitle(f"{sample.cls} image {sample.image.name[:40]}: {title}")
    fig.tight_layout()
    return save_figure(fig, path, credit), rows


def plot_per_prompt(report: dict[str, Any], path: str | Path | None = None) -> Any:
    """Bars: IoU of every prompt per class, and the false-positive rate of every negative prompt."""
    classes = list(report["classes"])
    negatives = report.get("negative_fp_rate_per_prompt", {})
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.35 * sum(len(report["classes"][c]["per_prompt"]) for c in classes) + 2))
    labels, values, colours = [], [], []
    for cls in classes:
        for prompt, m in report["classes"][cls]["per_prompt"].items():
            labels.append(f"{cls}: {prompt}")
            values.append(float("nan") if m["iou"] is None else m["iou"])  # undefined: nothing to find or found
            colours.append(CLASS_COLORS.get(cls, "gray"))
    axes[0].bar_label(axes[0].barh(labels, values, color=colours), fmt="%.2f", fontsize=7, padding=2)
    axes[0].set_xlabel("IoU (dataset level)")
    axes[0].set_title(f"IoU per prompt at threshold {thresholds_text(report_thresholds(report))}")
    neg_labels = [f"{cls} images: {p}" for cls in classes for p in negatives.get(cls, {})]
    neg_values = [v for cls in classes for v in negatives.get(cls, {}).values()]
    axes[1].bar_label(axes[1].barh(neg_labels, neg_values, color="tab:gray"), fmt="%.2f", fontsize=7, padding=2)
    axes[1].set_xlabel("fraction of images with > 1% of pixels predicted")
    axes[1].set_title("negative prompts (the other class's words)")
    for ax in axes:
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def meaning_table(segmenter: Any, phrases: list[str]) -> str:
    """Markdown: per phrase, the class the model takes it to mean, how sure, and the threshold prediction then uses."""
    lines = ["| phrase | taken to mean | probabilities | threshold |", "|---|---|---|---:|"]
    for phrase, meaning in zip(phrases, segmenter.prompt_meanings(phrases)):
        probs = ", ".join(f"{c} {p:.2f}" for c, p in meaning.probs.items()) or "(by its words)"
        lines.append(f"| {phrase} | {meaning.cls if meaning.known else '**none**'} | {probs} | {threshold_for(phrase, None, meaning.cls):g} |")
    return "\n".join(lines)


def find_runs(runs_dir: str | Path) -> dict[str, Path]:
    """{run name: RUN/best.pt} for every run folder under runs_dir holding a best.pt."""
    runs = (RunDir(p) for p in sorted(Path(runs_dir).iterdir()) if p.is_dir()) if Path(runs_dir).is_dir() else ()
    return {run.path.name: run.best for run in runs if run.best.is_file()}


def evaluate_runs(runs: dict[str, Path], roots: dict[str, Path], split: str, out_dir: str | Path,
                  device: str = "auto", known: dict[str, dict] | None = None) -> dict[str, dict]:
    """Evaluate every run's best.pt on the same split (reports in out_dir/eval_NAME); `known` reports are reused."""
    reports = dict(known or {})
    for name, ckpt in runs.items():
        if name not in reports:
            seg = Segmenter.from_checkpoint(ckpt, device=device)
            reports[name] = evaluate(seg, roots, split, Path(out_dir) / f"eval_{name}", progress=False)
    return {f"{name} ({rep.get('decoder', '?')})": rep for name, rep in reports.items()}




def marker_comparison(reports: dict[str, Any]) -> str:
    """A markdown table of the longest defect of each inspection report (one photo each): how the scale was found,
    the length and visible width the photo shows, and the mask's width."""
    lines = ["| measured | scale | length | visible width (mean / max) | mask width (mean) |", "|---|---|---|---|---|"]
    for name, report in reports.items():
        image = report.to_json()["images"][0]
        scale = image["scale"]
        how = {"marker": f"marker {scale.get('id')}: {scale.get('mm_per_px_range', [0, 0])[0]:.3f}-"
                         f"{scale.get('mm_per_px_range', [0, 0])[1]:.3f} mm/px over the photo",
               "mm_per_px": f"{scale.get('mm_per_px', 0):.3f} mm/px everywhere", None: "none (px)"}[scale.get("source")]
        if not image["defects"]:
            lines.append(f"| {name} | {how} | (no defect found) | | |")
            continue
        d = max(image["defects"], key=lambda d: d["length_px"])
        unit = "mm" if "length_mm" in d else "px"
        length = d.get(f"visible_length_{unit}") or d[f"length_{unit}"]
        seen = (d.get(f"visible_width_{unit}"), d.get(f"visible_max_width_{unit}"))
        visible = f"{seen[0]:.2f} / {seen[1]:.2f} {unit}" if None not in seen else "not seen"
        lines.append(f"| {name} | {how} | {length:.1f} {unit} | {visible} | {d[f'mean_width_{unit}']:.2f} {unit} |")
    return "\n".join(lines)


def drift_table(drift: dict[int, tuple[float | None, float | None]], unit: str = "mm") -> str:
    """A markdown table of textseg.measure.stability.width_drift: the visible and the mask's width per shift."""
    base = drift[0][0]
    lines = ["| mask | visible width | change | mask width |", "|---|---|---|---|"]
    for px in sorted(drift):
        seen, mask = drift[px]
        name = "as predicted" if px == 0 else f"{'grown' if px > 0 else 'shrunk'} {abs(px)} px"
        change = f"{100 * (seen / base - 1):+.1f}%" if seen is not None and base else "-"
        shown = f"{seen:.2f} {unit}" if seen is not None else "not seen"
        lines.append(f"| {name} | {shown} | {change} | {mask:.2f} {unit} |" if mask is not None else f"| {name} | {shown} | - | - |")
    return "\n".join(lines)
