"""Dataset audit: counts, unreadable files, mask checks, and copies or re-shots of one photo across splits
(found by textseg.data.duplicates); the leak-free copy (`--dedupe-to`), photo groups, text report, figure and CLI.
"""

from __future__ import annotations

import json
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from itertools import zip_longest
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from textseg.data.datasets import GROUPS_FILE, Sample, available_splits, detect_layout, list_samples, load_target, split_root_spec, visible_files
from textseg.data.duplicates import COPY, KINDS, SAME_SCENE, find_photo_pairs
from textseg.data.images import ImageReadError, load_image
from textseg.files import atomic_path, save_json
from textseg.progress import progress_bar
from textseg.viz import save_figure

logger = logging.getLogger(__name__)

TINY_FRACTION = 0.001  # a non-empty mask below this foreground fraction is "tiny"
HIST_BINS = 20

SPLIT_ORDER = {"train": 0, "valid": 1, "test": 2}


def parse_roots(roots: Sequence[str | Path] | dict[str, str | Path]) -> list[tuple[str | None, Path]]:
    """[(class, root)] from a {class: root} dict or ROOT / CLASS=ROOT items; a plain ROOT's class is what its folder
    name tells, else None (an audit of copies and files needs no class)."""
    items = [f"{cls}={root}" for cls, root in roots.items()] if isinstance(roots, dict) else list(roots)
    out = []
    for item in items:
        cls, path = split_root_spec(item)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such dataset root")
        out.append((cls, path))
    return out


def _image_files(split_dir: Path) -> list[Path]:
    """Image files of a split whatever its layout (images/ or the split folder itself)."""
    return visible_files(split_dir / "images" if (split_dir / "images").is_dir() else split_dir, images=True)


def _check_sample(sample: Sample) -> dict[str, Any]:
    """Readability, sizes and foreground fraction of one sample."""
    record: dict[str, Any] = {"image": str(sample.image)}
    try:
        image = load_image(sample.image)
    except ImageReadError as exc:
        return {**record, "unreadable": str(exc)}
    record["size"] = [int(image.shape[1]), int(image.shape[0])]
    if sample.mask is None and sample.label is None and sample.coco is None:
        return record
    try:
        target = load_target(sample)
    except (ImageReadError, ValueError) as exc:
        return {**record, "unreadable": str(exc)}
    record["mask_size"] = [int(target.shape[1]), int(target.shape[0])]
    record["foreground"] = float(target.mean())
    return record


def _audit_split(root: Path, split: str, cls: str | None, workers: int) -> tuple[dict[str, Any], list[Path]]:
    """Report of one split and its image paths."""
    split_dir = root / split
    report: dict[str, Any] = {"layout": None, "error": None}
    try:
        report["layout"] = detect_layout(split_dir)
        samples = list_samples(root, split, cls)
    except ValueError as exc:  # DatasetError: unpaired files, unknown layout, no images
        report["error"] = str(exc)
        masks = {m.stem: m for m in _image_files(split_dir / "masks")} if (split_dir / "masks").is_dir() else {}
        samples = [Sample(p, masks.get(p.stem), cls, split, root) for p in _image_files(split_dir)]  # audit what pairs
    with ThreadPoolExecutor(max(1, workers)) as pool:
        records = list(progress_bar(pool.map(_check_sample, samples), total=len(samples), desc=f"audit {root.name}/{split}",
                            disable=len(samples) < 200))
    fractions = [r["foreground"] for r in records if "foreground" in r]
    report.update({
        "images": len(samples),
        "masks": len(fractions),
        "unreadable": [{"file": r["image"], "error": r["unreadable"]} for r in records if "unreadable" in r],
        "size_mismatches": [{"image": r["image"], "image_size": r["size"], "mask_size": r["mask_size"]}
                            for r in records if "mask_size" in r and r["mask_size"] != r["size"]],
        "empty_masks": [r["image"] for r in records if r.get("foreground") == 0.0],
        "tiny_masks": [r["image"] for r in records if 0.0 < r.get("foreground", 0.0) < TINY_FRACTION],
        "foreground_fractions": fractions,
    })
    readable = [s.image for s, r in zip(samples, records) if "size" in r]
    return report, readable


def _histogram(fractions: list[float]) -> dict[str, list]:
    """Foreground-fraction histogram over [0, 1] in HIST_BINS bins."""
    counts, edges = np.histogram(np.asarray(fractions, dtype=float), bins=HIST_BINS, range=(0.0, 1.0))
    return {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]}


def report_groups(report: Mapping[str, Any], kinds: Sequence[str] = KINDS) -> list[set[Path]]:
    """Files that must stay on one side of a split (`textseg.data.datasets.collect_split`'s groups): each reported pair of `kinds`.

    The audit compares files of different splits only: for a root with train/ alone, pairs from
    `find_photo_pairs` over its files (`{a, b}` of each) serve the same purpose. Reports written
    before pairs had a kind count their pairs as copies.
    """
    return [{Path(p["a"]), Path(p["b"])} for p in report["cross_split_duplicates"] if p.get("kind", COPY) in kinds]


def write_photo_groups(root: str | Path, workers: int = 2, **options: Any) -> Path:
    """Search the train images of a root for copies and other shots of one scene (any names) and write them to
    ROOT/photo_groups.json, which every validation carve of the root then keeps on one side (textseg.data.datasets)."""
    root = Path(root)
    paths = [s.image for s in list_samples(root, "train", None)]  # the search needs no class
    pairs = find_photo_pairs(paths, workers=workers, **options)
    rows = [{"a": str(p.a.relative_to(root)), "b": str(p.b.relative_to(root)), "kind": p.kind, "distance": p.distance}
            for p in pairs]
    save_json({"pairs": rows}, root / GROUPS_FILE, indent=1)
    logger.info("%s: %d copies and %d other shots of one scene among %d train images", root,
                sum(p.kind == COPY for p in pairs), sum(p.kind != COPY for p in pairs), len(paths))
    return root / GROUPS_FILE


def _ordered(a: Path, b: Path, split_of: dict[Path, str]) -> tuple[Path, Path]:
    """The pair with the earlier split (train < valid < test) first."""
    def rank(p: Path) -> tuple[int, str]:
        return SPLIT_ORDER.get(split_of[p], len(SPLIT_ORDER)), str(p)

    return (a, b) if rank(a) <= rank(b) else (b, a)


def audit(
    roots: Sequence[str | Path] | dict[str, str | Path],
    duplicates: bool = True,
    workers: int = 2,
    **duplicate_options: Any,
) -> dict[str, Any]:
    """Audit dataset roots: counts, unreadable files, mask sizes, empty/tiny masks, cross-split copies and re-shots.

    Each cross-split pair has a kind: COPY (one photo, augmented) or SAME_SCENE (another shot of the
    scene). `leaked` counts, per later split, the files with a pair of either kind in an earlier
    split (what `dedupe` drops); `leaked_by_kind` splits them by kind.
    """
    report: dict[str, Any] = {"roots": [], "cross_split_duplicates": [], "tiny_fraction": TINY_FRACTION}
    for cls, root in parse_roots(roots):
        entry: dict[str, Any] = {"root": str(root), "class": cls, "splits": {}}
        paths, split_of = [], {}
        for split in available_splits(root):
            split_report, images = _audit_split(root, split, cls, workers)
            entry["splits"][split] = split_report
            paths += images
            split_of.update({p: split for p in images})
        fractions = [f for s in entry["splits"].values() for f in s.pop("foreground_fractions")]
        entry["foreground_histogram"] = _histogram(fractions)
        pairs = []
        if duplicates and len(entry["splits"]) > 1:
            found = find_photo_pairs(paths, [split_of[p] for p in paths], workers=workers, **duplicate_options)
            for a, b, distance, kind in found:
                a, b = _ordered(a, b, split_of)
                pairs.append({"a": str(a), "b": str(b), "distance": distance, "kind": kind, "split_a": split_of[a],
                              "split_b": split_of[b], "class": cls, "root": str(root)})
        later = [split for split in entry["splits"] if split != "train"]
        entry["leaked"] = {split: len({p["b"] for p in pairs if p["split_b"] == split}) for split in later}
        entry["leaked_by_kind"] = {kind: {split: len({p["b"] for p in pairs if p["split_b"] == split and p["kind"] == kind})
                                          for split in later} for kind in KINDS}
        report["cross_split_duplicates"] += pairs
        report["roots"].append(entry)
    return report


# ----------------------------------------------------------------------------- leak-free copy

def _is_inside(path: Path, folder: Path) -> bool:
    """True if path is folder or lies under it."""
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def dedupe(root: str | Path, out_dir: str | Path, report: dict[str, Any]) -> Path:
    """Copy a dataset root to out_dir without the files of later splits that have a copy or another shot of their scene
    in an earlier one.

    For each cross-split pair of this root, of either kind, the file of the later split (train <
    valid < test) is dropped with its mask and label; a COCO json is filtered to the kept images. The
    source is never modified. Returns out_dir.
    """
    root, out_dir = Path(root), Path(out_dir)
    if _is_inside(out_dir, root) or _is_inside(root, out_dir):
        raise ValueError(f"--dedupe-to {out_dir}: must lie outside the dataset root {root} (and not contain it)")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"--dedupe-to {out_dir}: folder exists and is not empty; choose a new folder")
    pairs = [p for p in report["cross_split_duplicates"] if _is_inside(Path(p["b"]), root) and _is_inside(Path(p["a"]), root)]
    dropped = {Path(p["b"]).resolve() for p in pairs}
    dropped_stems = {(d.relative_to(root.resolve()).parts[0], d.stem) for d in dropped}
    for source in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = source.relative_to(root)
        target = out_dir / relative
        if source.resolve() in dropped:
            continue
        if len(relative.parts) == 3 and relative.parts[1] in ("masks", "labels") and \
                (relative.parts[0], source.stem) in dropped_stems:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.name == "_annotations.coco.json":
            _write_filtered_coco(source, target, {d.name for d in dropped if d.parent == source.parent.resolve()})
        else:
            shutil.copy2(source, target)
    logger.info("%s -> %s: %d leaked files dropped (%d with a copy, %d with another shot of the scene)", root, out_dir,
                len(dropped), len({p["b"] for p in pairs if p.get("kind", COPY) == COPY}),
                len({p["b"] for p in pairs if p.get("kind", COPY) == SAME_SCENE}))
    return out_dir


def _write_filtered_coco(source: Path, target: Path, drop_names: set[str]) -> None:
    """Write a COCO json without the images named in drop_names and their annotations."""
    data = json.loads(source.read_text())
    drop_ids = {im["id"] for im in data.get("images", []) if im.get("file_name") in drop_names}
    data["images"] = [im for im in data.get("images", []) if im["id"] not in drop_ids]
    data["annotations"] = [a for a in data.get("annotations", []) if a.get("image_id") not in drop_ids]
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(data))


# ----------------------------------------------------------------------------- summary, figure, CLI

def summary(report: dict[str, Any]) -> str:
    """Human-readable text summary of an audit report."""
    lines = []
    for entry in report["roots"]:
        lines.append(f"{entry['root']} ({entry['class'] or 'class not given'})")
        for split, s in entry["splits"].items():
            lines.append(f"  {split:5s} {s['layout'] or '?':5s} images {s['images']:6d}  masks {s['masks']:6d}  "
                         f"unreadable {len(s['unreadable'])}  size mismatches {len(s['size_mismatches'])}  "
                         f"empty {len(s['empty_masks'])}  tiny {len(s['tiny_masks'])}")
            if s["error"]:
                first, *rest = s["error"].splitlines()
                lines.append(f"        error: {first}")
                lines += [f"          {line.strip()}" for line in rest[:10]]
                if len(rest) > 10:
                    lines.append(f"          ... and {len(rest) - 10} more (see the JSON report)")
            for bad in s["unreadable"][:5]:
                lines.append(f"        unreadable: {bad['error']}")
        for kind, what in ((COPY, "a copy"), (SAME_SCENE, "another shot of the scene")):
            leaked = ", ".join(f"{split} {n}" for split, n in entry["leaked_by_kind"][kind].items()) or "no other split"
            lines.append(f"  files with {what} in an earlier split: {leaked}")
    pairs = report["cross_split_duplicates"]
    counts = ", ".join(f"{kind} {sum(p['kind'] == kind for p in pairs)}" for kind in KINDS)
    lines.append(f"cross-split duplicate pairs: {len(pairs)} ({counts})")
    for p in pairs[:20]:
        lines.append(f"  {p['kind']:10s}  {p['split_a']}/{Path(p['a']).name}  ~  {p['split_b']}/{Path(p['b']).name}  "
                     f"({p['distance']:.3f})")
    if len(pairs) > 20:
        lines.append(f"  ... and {len(pairs) - 20} more (see the JSON report)")
    return "\n".join(lines)


def figure_pairs(pairs: Sequence[Mapping[str, Any]], max_pairs: int) -> list[Mapping[str, Any]]:
    """Up to max_pairs pairs to show, both kinds alike (half each where both have enough), best first within a kind."""
    by_kind = [[p for p in pairs if p["kind"] == kind] for kind in KINDS]
    alternating = [p for row in zip_longest(*by_kind) for p in row if p is not None]  # copy, same scene, copy, ...
    return sorted(alternating[:max_pairs], key=lambda p: KINDS.index(p["kind"]))


def pair_label(pair: Mapping[str, Any]) -> str:
    """Kind and distance of a reported pair, as the figure shows it."""
    return f"{'copy' if pair['kind'] == COPY else 'same scene'}, distance {pair['distance']:.3f}"


def audit_figure(report: dict[str, Any], path: str | Path, max_pairs: int = 4, title: str | None = None) -> Path:
    """Save counts per split and class, foreground histograms and a few duplicate pairs to a PNG."""
    pairs = figure_pairs(report["cross_split_duplicates"], max_pairs)
    rows = 1 + len(pairs)
    fig = plt.figure(figsize=(10, 3.2 * rows))
    grid = fig.add_gridspec(rows, 2)
    ax = fig.add_subplot(grid[0, 0])
    names = [f"{e['class'] or '?'}\n{Path(e['root']).name}" for e in report["roots"]]
    for k, split in enumerate(SPLIT_ORDER):
        counts = [e["splits"].get(split, {}).get("images", 0) for e in report["roots"]]
        ax.bar(np.arange(len(names)) + (k - 1) * 0.27, counts, width=0.27, label=split)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel("images")
    ax.set_title("images per split")
    ax.legend()
    ax = fig.add_subplot(grid[0, 1])
    for e in report["roots"]:
        hist = e["foreground_histogram"]
        ax.stairs(hist["counts"], hist["edges"], label=e["class"] or Path(e["root"]).name)
    ax.set_xlabel("foreground fraction of the mask")
    ax.set_ylabel("masks")
    ax.set_title("foreground fraction")
    ax.legend()
    for row, pair in enumerate(pairs, start=1):
        for col, key in enumerate(("a", "b")):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(load_image(pair[key]))
            ax.set_title(f"{pair['split_' + key]}: {Path(pair[key]).name[:40]}", fontsize=8)
            ax.axis("off")
        fig.axes[-1].text(-0.05, 0.5, pair_label(pair), transform=fig.axes[-1].transAxes,
                          ha="center", va="center", rotation=90, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    plt.close(save_figure(fig, path, dpi=80))
    return Path(path)
