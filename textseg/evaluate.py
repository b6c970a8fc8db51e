"""Evaluation: per-class and per-prompt metrics at original image size, negative prompts, threshold sweep.

Each image is encoded once; every prompt of its class and the other class's negative prompt(s) are
decoded from the cached tokens; each probability map is upsampled to the image's original size once and
thresholded at every sweep value. Headline class metrics use the class's canonical prompt
("segment crack", "segment taping area") at `threshold`; `per_prompt` has every prompt. IoU is
dataset-level (intersection and union summed over images) with the per-image mean alongside. A
negative prompt (the other class's) counts as a false positive on an image when more than 1% of its
pixels are predicted. `best_threshold` maximises the canonical prompt's IoU on the evaluated split
itself, so it is optimistic there: choose it on valid, report on test.

`textseg evaluate --ckpt CK --data crack=ROOT --data taping=ROOT --split valid --out DIR` writes
DIR/report.json (with per-image results under "per_image") and DIR/report.md, and prints the table.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from textseg import CLASSES, THRESHOLD
from textseg.data.datasets import collect_split, load_target
from textseg.data.images import load_image
from textseg.files import atomic_path, save_json
from textseg.metrics import NEGATIVE_AREA, MetricAccumulator, format_metric
from textseg.predictor import Segmenter
from textseg.progress import progress_bar
from textseg.prompts import REPRESENTATIVE, canonical_prompt, normalise_class, other_class, threshold_for, thresholds_text
from textseg.drawing import draw_outline, overlay
from textseg.viz import image_grid

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class _PromptStats:
    """One MetricAccumulator per sweep threshold for one (class, prompt)."""

    def __init__(self, n_thresholds: int) -> None:
        self.acc = [MetricAccumulator() for _ in range(n_thresholds)]

    def add(self, prob: np.ndarray, target: np.ndarray, grid: np.ndarray) -> list[dict[str, float]]:
        """Count one image at every threshold; returns its own metrics per threshold."""
        fg = prob[target]  # probabilities on target pixels
        out = []
        for acc, t in zip(self.acc, grid):
            tp, predicted = int((fg > t).sum()), int((prob > t).sum())
            out.append(acc.add_counts(tp, predicted - tp, fg.size - tp))
        return out

    def at(self, t: int) -> dict[str, float]:
        """Dataset-level scores at threshold index t, with the per-image mean IoU."""
        summary = self.acc[t].summary()
        out = {k: summary[k] for k in ("iou", "dice", "precision", "recall")}
        out["mean_image_iou"] = summary["mean_iou"]
        return out


def _mean_defined(values: Sequence[float | None]) -> float | None:
    """Mean of the defined values, None when none is."""
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def _fired(prob: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(T,) bool: more than NEGATIVE_AREA of the pixels predicted at each threshold."""
    return np.array([(prob > t).mean() > NEGATIVE_AREA for t in grid])


def threshold_grid(thresholds: Sequence[float], reported: Sequence[float]) -> list[float]:
    """Sorted, validated thresholds including the reported ones."""
    grid = sorted({round(float(t), 6) for t in [*thresholds, *reported]})
    bad = [t for t in grid if not 0.0 <= t <= 1.0]
    if bad:
        raise ValueError(f"thresholds must be in [0, 1], got {bad}")
    return grid


def evaluate(
    segmenter: Segmenter,
    roots: Mapping[str, str | Path],
    split: str = "valid",
    out_dir: str | Path | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    prompts: Mapping[str, Sequence[str]] | None = None,
    batch_size: int = 8,
    threshold: float | None = None,
    all_negative_prompts: bool = False,
    progress: bool = True,
    negative_prompts: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Metrics of `segmenter` on `split` of CLASS=ROOT datasets; writes report.json/report.md to out_dir if given.
    Each prompt is thresholded at `threshold`, or when None at the default of the class the model takes it to mean
    (CLASS_THRESHOLDS), as prediction does. `negative_prompts`: per image class, prompts whose target is empty on
    it (paraphrases of the other class, prompts for other things), scored as how often each fires; the other class's
    canonical prompt is always among them."""
    roots = {normalise_class(c): Path(r) for c, r in roots.items()}
    if not roots:
        raise ValueError("no datasets to evaluate; give --data CLASS=ROOT")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dc = segmenter.data_cfg
    samples = collect_split(roots, split, val_fraction=dc.val_fraction, seed=dc.carve_seed)
    if not samples:
        raise ValueError(f"split {split!r} of {', '.join(map(str, roots.values()))} holds no images")

    pos_prompts = {cls: _class_prompts(cls, prompts) for cls in roots}
    neg_prompts = {cls: _negative_prompts(cls, negative_prompts, all_negative_prompts) for cls in roots}
    every = list(dict.fromkeys([*map(canonical_prompt, CLASSES), *(p for cls in roots for p in pos_prompts[cls] + neg_prompts[cls])]))
    meanings = dict(zip(every, segmenter.prompt_meanings(every)))
    used = {p: threshold_for(p, threshold, m.cls) for p, m in meanings.items()}  # each prompt's, as prediction applies it
    grid_list = threshold_grid(thresholds, list(used.values()))
    grid = np.asarray(grid_list, dtype=np.float32)  # compared in float32, as Prediction.mask does
    t_prompt = {p: grid_list.index(round(t, 6)) for p, t in used.items()}  # grid index of each prompt's threshold
    t_of = {cls: t_prompt[canonical_prompt(cls)] for cls in CLASSES}
    pos = {cls: {p: _PromptStats(len(grid)) for p in pos_prompts[cls]} for cls in roots}
    neg = {cls: {p: np.zeros(len(grid), np.int64) for p in neg_prompts[cls]} for cls in roots}
    segmenter.encode_prompts([p for cls in roots for p in pos_prompts[cls] + neg_prompts[cls]])  # one text batch
    n_images = {cls: 0 for cls in roots}
    per_image: list[dict[str, Any]] = []

    for start in progress_bar(range(0, len(samples), batch_size), desc=f"evaluate {split}", unit="batch", disable=not progress):
        chunk = samples[start : start + batch_size]
        rgbs = [load_image(s.image) for s in chunk]
        targets = [_target(s, rgb) for s, rgb in zip(chunk, rgbs)]
        encoded = segmenter.encode_images(rgbs, [str(s.image) for s in chunk])
        pairs = [(j, p, False) for j, s in enumerate(chunk) for p in pos_prompts[s.cls]]
        pairs += [(j, p, True) for j, s in enumerate(chunk) for p in neg_prompts[s.cls]]
        records = [{"prompt_iou": {}} for _ in chunk]
        for k in range(0, len(pairs), batch_size):
            part = pairs[k : k + batch_size]
            probs, _ = segmenter.decode([encoded[j] for j, _, _ in part], [p for _, p, _ in part])
            for (j, prompt, negative), prob in zip(part, probs):
                s, rec = chunk[j], records[j]
                if negative:
                    fired = _fired(prob, grid)
                    neg[s.cls][prompt] += fired
                    if prompt == canonical_prompt(other_class(s.cls)):
                        rec["negative_prompt"] = prompt
                        rec["negative_fraction"] = float((prob > grid[t_of[other_class(s.cls)]]).mean())
                    continue
                own = pos[s.cls][prompt].add(prob, targets[j], grid)[t_prompt[prompt]]
                rec["prompt_iou"][prompt] = own["iou"]
                if prompt == pos_prompts[s.cls][0]:
                    rec.update(
                        iou=own["iou"],
                        dice=own["dice"],
                        pred_fraction=float((prob > grid[t_of[s.cls]]).mean()),
                        target_fraction=float(targets[j].mean()),
                        max_prob=float(prob.max()),
                    )
        for s, rec, rgb in zip(chunk, records, rgbs):
            n_images[s.cls] += 1
            per_image.append({"image": str(s.image), "class": s.cls, "prompt": pos_prompts[s.cls][0],
                              "height": int(rgb.shape[0]), "width": int(rgb.shape[1]), **rec})

    report = _build_report(segmenter, split, grid_list, t_prompt, pos, neg, n_images,
                           all_negative_prompts or negative_prompts is not None)
    report["prompt_meanings"] = {p: {"class": m.cls, "probs": m.probs} for p, m in meanings.items()}
    report["roots"] = {cls: str(root) for cls, root in roots.items()}
    report["per_image"] = per_image
    if out_dir is not None:
        write_report(report, Path(out_dir))
    return report


def _negative_prompts(cls: str, chosen: Mapping[str, Sequence[str]] | None, all_of_other: bool) -> list[str]:
    """Prompts whose target is empty on a class's images: the other class's canonical one first, then the chosen ones
    (or, with all_of_other, the other class's representative prompts)."""
    first = canonical_prompt(other_class(cls))
    more = list(chosen.get(cls, ())) if chosen is not None else list(REPRESENTATIVE[other_class(cls)]) if all_of_other else []
    return list(dict.fromkeys([first, *more]))


def _class_prompts(cls: str, prompts: Mapping[str, Sequence[str]] | None) -> list[str]:
    """Prompts evaluated for a class, canonical first (textseg.prompts.REPRESENTATIVE unless overridden)."""
    chosen = list(prompts[cls]) if prompts is not None and cls in prompts else list(REPRESENTATIVE[cls])
    canonical = canonical_prompt(cls)
    return [canonical] + [p for p in dict.fromkeys(chosen) if p != canonical]


def _target(sample: Any, rgb: np.ndarray) -> np.ndarray:
    """The sample's ground-truth mask, checked against the image size."""
    target = np.asarray(load_target(sample), dtype=bool)
    if target.shape != rgb.shape[:2]:
        raise ValueError(
            f"{sample.mask or sample.label or sample.coco}: mask is {target.shape[1]}x{target.shape[0]} but image "
            f"{sample.image} is {rgb.shape[1]}x{rgb.shape[0]}; re-extract the masks"
        )
    return target


def _build_report(
    segmenter: Segmenter,
    split: str,
    grid: list[float],
    t_prompt: dict[str, int],
    pos: dict[str, dict[str, _PromptStats]],
    neg: dict[str, dict[str, np.ndarray]],
    n_images: dict[str, int],
    all_negative_prompts: bool,
) -> dict[str, Any]:
    """Assemble the JSON report from accumulated counts; t_prompt: the grid index of each prompt's threshold (that of
    the class the model takes it to mean)."""
    t_of = {cls: t_prompt[canonical_prompt(cls)] for cls in CLASSES}
    classes: dict[str, Any] = {}
    sweep: dict[str, Any] = {"thresholds": grid, "classes": {}}
    neg_rate: dict[str, float] = {}
    neg_per_prompt: dict[str, dict[str, float]] = {}
    for cls, stats in pos.items():
        n = max(n_images[cls], 1)
        t_main, t_neg = t_of[cls], t_of[other_class(cls)]
        canonical = next(iter(stats))
        canon_neg = neg[cls][canonical_prompt(other_class(cls))]
        rows = [stats[canonical].at(t) for t in range(len(grid))]
        ious = [r["iou"] for r in rows]
        best = int(np.argmax([-1.0 if v is None else v for v in ious]))  # undefined: nothing to find, nothing found
        entry = dict(stats[canonical].at(t_main))
        entry.update(
            threshold=grid[t_main],
            best_threshold=grid[best],
            best_iou=ious[best],
            prompt_mean_iou=_mean_defined([s.at(t_prompt[p])["iou"] for p, s in stats.items()]),
            negative_fp_rate=float(canon_neg[t_neg] / n),
            n_images=n_images[cls],
            per_prompt={p: {**s.at(t_prompt[p]), "threshold": grid[t_prompt[p]]} for p, s in stats.items()},
        )
        classes[cls] = entry
        sweep["classes"][cls] = {k: [r[k] for r in rows] for k in ("iou", "dice", "precision", "recall", "mean_image_iou")}
        sweep["classes"][cls]["negative_fp_rate"] = [float(v / n) for v in canon_neg]
        neg_rate[cls] = float(canon_neg[t_neg] / n)
        neg_per_prompt[cls] = {p: float(v[t_prompt[p]] / n) for p, v in neg[cls].items()}
    total = sum(n_images.values())
    fired = sum(neg[c][canonical_prompt(other_class(c))][t_of[other_class(c)]] for c in pos)
    report: dict[str, Any] = {
        "classes": classes,
        "negative_fp_rate": float(fired / total) if total else math.nan,
        "negative_fp_rate_per_class": neg_rate,
        "threshold_sweep": sweep,
        "thresholds": {cls: grid[t] for cls, t in t_of.items()},
        "negative_area": NEGATIVE_AREA,
        "split": split,
        "checkpoint": segmenter.checkpoint,
        "decoder": segmenter.model_cfg.decoder,
        "n_images": dict(n_images),
    }
    if all_negative_prompts:
        report["negative_fp_rate_per_prompt"] = neg_per_prompt
    return report


# --------------------------------------------------------------------------------------- output


def report_thresholds(report: Mapping[str, Any]) -> dict[str, float]:
    """The threshold each class's prompts were scored at; a report written before per-class thresholds has one."""
    if "thresholds" in report:
        return {cls: float(t) for cls, t in report["thresholds"].items()}
    return dict.fromkeys(CLASSES, float(report.get("threshold", THRESHOLD)))


def markdown_table(report: Mapping[str, Any]) -> str:
    """The class table and the per-prompt table of a report, as markdown."""
    lines = [
        f"Split `{report['split']}`, checkpoint `{report.get('checkpoint')}`, threshold {thresholds_text(report_thresholds(report))}; "
        f"negative prompt fires when > {report.get('negative_area', NEGATIVE_AREA):.0%} of pixels are predicted.",
        "",
        "| class | images | IoU | mean image IoU | Dice | precision | recall | negative FP rate | best threshold (IoU) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cls, m in report["classes"].items():
        cells = " | ".join(format_metric(m[k]) for k in ("iou", "mean_image_iou", "dice", "precision", "recall"))
        lines.append(f"| {cls} | {m['n_images']} | {cells} | {m['negative_fp_rate']:.1%} | {m['best_threshold']:g} ({format_metric(m['best_iou'])}) |")
    lines.append(f"| **all** | {sum(report['n_images'].values())} | | | | | | {report['negative_fp_rate']:.1%} | |")
    lines += ["", "| class | prompt | IoU | mean image IoU | Dice | precision | recall |", "|---|---|---:|---:|---:|---:|---:|"]
    for cls, m in report["classes"].items():
        for prompt, p in m["per_prompt"].items():
            cells = " | ".join(format_metric(p[k]) for k in ("iou", "mean_image_iou", "dice", "precision", "recall"))
            lines.append(f"| {cls} | {prompt} | {cells} |")
    return "\n".join(lines) + "\n"


def write_report(report: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """DIR/report.json and DIR/report.md, each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    save_json(report, json_path)
    with atomic_path(md_path) as tmp:
        tmp.write_text("# Evaluation\n\n" + markdown_table(report))
    logger.info("wrote %s and %s", json_path, md_path)
    return json_path, md_path


def load_report(path: str | Path) -> dict[str, Any]:
    """A report.json (or the directory holding one)."""
    path = Path(path)
    path = path / "report.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no evaluation report; run `textseg evaluate --out DIR` first")
    return json.loads(path.read_text())


def compare_reports(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """A markdown table comparing runs: IoU and Dice per class, negative FP rate, one row per run."""
    classes = sorted({c for r in reports.values() for c in r["classes"]})
    head = "| run | " + " | ".join(f"{c} IoU | {c} Dice" for c in classes) + " | negative FP rate |"
    lines = [head, "|---|" + "---:|" * (2 * len(classes) + 1)]
    for name, rep in reports.items():
        cells = []
        for c in classes:
            m = rep["classes"].get(c)
            cells += [format_metric(m["iou"]), format_metric(m["dice"])] if m else ["-", "-"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {rep['negative_fp_rate']:.1%} |")
    return "\n".join(lines) + "\n"


def best_and_worst(report: Mapping[str, Any], cls: str, k: int = 4) -> tuple[list[dict], list[dict]]:
    """The k best and k worst images of a class by IoU of the canonical prompt (ties broken by path), among the
    images that show the class: an empty prediction of an empty image scores IoU 1 without showing anything."""
    rows = sorted((r for r in report["per_image"] if r["class"] == cls and r.get("target_fraction", 1) > 0),
                  key=lambda r: (r["iou"], r["image"]))
    return rows[::-1][:k], rows[:k]


def plot_cases(
    segmenter: Segmenter,
    report: Mapping[str, Any],
    cls: str,
    which: str = "worst",
    k: int = 4,
    credit: bool | str | None = None,
    path: str | Path | None = None,
):
    """Overlays (prediction red, truth outline yellow) of a class's best or worst images; a Figure."""
    if which not in ("best", "worst"):
        raise ValueError(f"which must be 'best' or 'worst', got {which!r}")
    best, worst = best_and_worst(report, cls, k)
    rows = best if which == "best" else worst
    if not rows:
        raise ValueError(f"report has no {cls!r} images")
    dc = segmenter.data_cfg
    samples = collect_split({c: Path(r) for c, r in report["roots"].items()}, report["split"], dc.val_fraction, dc.carve_seed)
    by_path = {str(s.image): s for s in samples}
    prompt = rows[0]["prompt"]
    preds = segmenter.predict([r["image"] for r in rows], prompt, threshold=report_thresholds(report)[cls])
    shown, titles = [], []
    for r, pred in zip(rows, preds):
        rgb = load_image(r["image"])
        if r["image"] not in by_path:
            raise FileNotFoundError(f"{r['image']}: no longer in split {report['split']!r} of {report['roots']}")
        target = load_target(by_path[r["image"]])
        shown.append(draw_outline(overlay(rgb, pred.mask), target))
        name = Path(r["image"]).name
        titles.append(f"{name if len(name) <= 30 else name[:13] + '...' + name[-14:]}\nIoU {r['iou']:.2f}")
    return image_grid(shown, titles=titles, ncols=min(k, 4), suptitle=f"{which} {cls} images, prompt {prompt!r} (red: prediction, yellow: truth)", credit=credit, path=path)


