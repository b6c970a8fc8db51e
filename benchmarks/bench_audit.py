"""Near-duplicate search on the real Roboflow sample: recall, precision and speed.

Ground truth: drywall files sharing the Roboflow prefix before `_jpg.rf.` are copies of one photo.
The copies of each photo go to different pseudo-splits (train/valid/test); the crack photos (one
copy each, many alike) are spread over the splits as negatives, plus planted copies of crack
photos (flip, 90-degree rotation, 10-degree rotation + crop, brightness/hue shift, cutout) in valid.
The search reports two kinds of pairs (textseg.data.audit): copies, scored here, and other shots of the
same scene (`same_scene`), which name ground truth cannot score: they are counted, split into pairs
of one photo (copies the alignment check missed) and pairs of two photos, and listed for checking by
eye; they no longer count as false copies.
Recall: photos present in two pseudo-splits with at least one reported cross-split copy pair of them.
Precision: reported copy pairs that are copies of one photo, by name or by pixels: the crack export
also stores the same photo under unrelated names, joined by `same_photo_aliases` (identical up to a
flip/rotation: 8_/9_, 15_/photo_..108, 38_/photo_..380; cropped and rotated: SAME_PHOTO_BY_EYE);
those also count as photos present in two splits. Dropped-file precision:
files that `--dedupe-to` would drop for a copy pair that do have a copy in an earlier split. Speed: `--speed N` times N
images made of augmented copies of the sample. Results are appended to benchmarks/audit_results.md, with the CPU model
and the date.

    python benchmarks/bench_audit.py [--sample ../shared/data/roboflow-sample] [--speed 10000] [--fine-side 0]
        [--figure figures/audit_real_sample.png]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from textseg.data.audit import COPY, SAME_SCENE, audit, audit_figure, find_photo_pairs, summary

SPLITS = ("train", "valid", "test")


def photo_of(path: Path) -> str:
    """Roboflow photo key (name before `_jpg.rf.`), or the planted copy's source name."""
    return re.split(r"_(?:jpe?g|png)\.rf\.", path.name)[0].removeprefix("planted-").split("--")[0]


# Crack photos stored under unrelated names that are the same pixels under a crop and rotation (or, for
# images324, a collage holding a crop of the other): checked by eye, side by side, aligned. The first four
# on the first 300 crack photos; the rest among the copy pairs the names called false on all 906
# (benchmarks/audit_results.md, 2026-12-03): mirrored, rotated or cropped copies, side by side at 280 px.
SAME_PHOTO_BY_EYE = (
    ("00028", "00029"), ("00032", "00033"), ("23", "photo_6186122103615503188_y"), ("images324", "shutterstock_229519096"),
    ("2", "photo_6158681956993318788_y"), ("12", "13"), ("28", "photo_6186122103615503280_y"), ("00048", "533"),
    ("Image_-597-", "cracking161"), ("cracking159", "cracking299"), ("Image_-620-", "cracking289"),
    ("Concrete-Crack", "images40"), ("Image_-634-", "cracking338"), ("00046", "00047"),
    ("cracking014", "ea11056c2a9f4be489961cda10cda948"), ("cracking0102073", "cracking048"),
    ("44", "photo_6186122103615503325_y"), ("images45", "cracking022"), ("cracking0102063", "wall-cracks"),
    ("00026", "00027"), ("25", "26"), ("cracking358", "cracks0037"), ("cracking305", "cracking248"), ("00039", "00041"),
    ("crack218", "cracking312"), ("00006", "00013"), ("concrete_cracks10", "cracking248"), ("00363-Copy", "00364-Copy"),
    ("42", "photo_6186122103615503359_y"), ("00010", "00017"), ("NUVLAPynR64tPhEkxNWWTc-415-80", "cracking0102116"),
    ("NUVLAPynR64tPhEkxNWWTc", "cracking0102116"), ("507", "520"), ("00004", "00008"), ("00031", "00032"),
    ("image15_jpeg", "wall-cracks"), ("cracking0102083", "cracking148"), ("Retaining-Wall-Crack", "images5"),
    ("00005", "00010"), ("cracking299", "images110"), ("images23", "shutterstock_1703271616"), ("00021", "00022"),
    ("00147", "00148"), ("00060", "00066"), ("6-Most-Likely-Reasons-Youre-Seeing-Cracks-in-Your-Walls-01", "images43"),
    ("NUVLAPynR64tPhEkxNWWTc", "cracking042"), ("crack313", "image15_jpeg"), ("00014", "00016"),
)


def same_photo_aliases(paths: list[Path], min_correlation: float = 0.98) -> dict[str, str]:
    """{photo key: canonical key} joining files with different names but the same pixels: identical up to
    flips/rotations (found here), or cropped and rotated copies in SAME_PHOTO_BY_EYE."""
    first: dict[str, Path] = {}
    for p in paths:
        if not p.name.startswith("planted-"):
            first.setdefault(photo_of(p), p)
    keys = sorted(first)
    thumbs = np.stack([cv2.resize(cv2.imread(str(first[k]), cv2.IMREAD_GRAYSCALE), (64, 64), interpolation=cv2.INTER_AREA)
                       for k in keys]).astype(np.float32)  # (K, 64, 64)
    thumbs -= thumbs.mean(axis=(1, 2), keepdims=True)
    thumbs /= np.linalg.norm(thumbs.reshape(len(keys), -1), axis=1)[:, None, None] + 1e-6
    variants = np.stack([v for r in range(4) for v in (np.rot90(thumbs, r, axes=(1, 2)),
                                                      np.rot90(thumbs, r, axes=(1, 2))[:, :, ::-1])], 1)  # (K, 8, 64, 64)
    alias = {k: k for k in keys}

    def canonical(key: str) -> str:
        while alias[key] != key:
            key = alias[key]
        return key

    def join(a: str, b: str) -> None:  # union-find: chains of copies (00005 ~ 00010 ~ 00017) end in one key
        alias[canonical(b)] = canonical(a)

    for i, key in enumerate(keys[:-1]):
        correlation = np.einsum("d,jvd->jv", thumbs[i].ravel(), variants[i + 1:].reshape(len(keys) - i - 1, 8, -1)).max(axis=1)
        for j in np.flatnonzero(correlation >= min_correlation):
            join(key, keys[i + 1 + j])
    for a, b in SAME_PHOTO_BY_EYE:
        if a in alias and b in alias:
            join(a, b)
    return {k: canonical(k) for k in keys}


def augment(image: np.ndarray, kind: str, rng: random.Random) -> np.ndarray:
    """One Roboflow-style augmentation of a BGR image."""
    h, w = image.shape[:2]
    if kind == "flip":
        return image[:, ::-1] if rng.random() < 0.5 else image[::-1]
    if kind == "rot90":
        return np.rot90(image, rng.choice([1, 2, 3]))
    if kind == "rotate_crop":
        angle = rng.uniform(-15, 15)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        m[0, 1] += rng.uniform(-0.1, 0.1)  # shear
        out = cv2.warpAffine(image, m, (w, h))
        x0, y0 = int(w * rng.uniform(0, 0.15)), int(h * rng.uniform(0, 0.15))
        return cv2.resize(out[y0:y0 + int(h * 0.8), x0:x0 + int(w * 0.8)], (w, h))
    if kind == "color":
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.int16)
        hsv[..., 0] = (hsv[..., 0] + rng.randint(-20, 20)) % 180
        hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(0.6, 1.4), 0, 255)
        return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
    if kind == "cutout":
        out = image.copy()
        for _ in range(5):
            s = int(w * 0.1)
            x, y = rng.randrange(w - s), rng.randrange(h - s)
            out[y:y + s, x:x + s] = 0
        return out
    raise ValueError(f"unknown augmentation {kind!r}")


KINDS = ("flip", "rot90", "rotate_crop", "color", "cutout")


def build_accuracy_set(sample: Path, tmp: Path, seed: int) -> tuple[list[Path], list[str]]:
    """Paths and pseudo-split labels: drywall copies spread over splits, cracks + planted copies."""
    rng = random.Random(seed)
    by_photo: dict[str, list[Path]] = {}
    for p in sorted((sample / "drywall" / "train").glob("*.jpg")):
        by_photo.setdefault(photo_of(p), []).append(p)
    paths, groups = [], []
    for copies in by_photo.values():
        order = rng.sample(SPLITS, len(copies)) if len(copies) > 1 else ["train"]
        paths += copies
        groups += order
    cracks = sorted((sample / "cracks" / "train" / "images").glob("*.jpg"))
    for i, p in enumerate(cracks):
        paths.append(p)
        groups.append(SPLITS[i % 3])
    for i, p in enumerate(rng.sample(cracks, 60)):
        kind = KINDS[i % len(KINDS)]
        out = tmp / f"planted-{p.stem}--{kind}.jpg"
        cv2.imwrite(str(out), np.ascontiguousarray(augment(cv2.imread(str(p)), kind, rng)))
        paths.append(out)
        groups.append("valid" if groups[paths.index(p)] != "valid" else "test")
    return paths, groups


def score(paths: list[Path], groups: list[str], pairs: list[tuple[Path, Path, float]],
          alias: dict[str, str] | None = None) -> dict[str, float]:
    """Photo-level recall and pair precision against the photo keys (joined by `alias`)."""
    alias = alias or {}

    def photo(path: Path) -> str:
        return alias.get(photo_of(path), photo_of(path))

    splits_of: dict[str, set[str]] = {}
    for p, g in zip(paths, groups):
        splits_of.setdefault(photo(p), set()).add(g)
    leaked = {k for k, s in splits_of.items() if len(s) > 1}
    true = [(a, b) for a, b, _ in pairs if photo(a) == photo(b)]
    found = {photo(a) for a, _ in true}
    split_of = dict(zip(paths, groups))
    first = {k: min(s, key=SPLITS.index) for k, s in splits_of.items()}
    flagged = {max((a, b), key=lambda p: SPLITS.index(split_of[p])) for a, b, _ in pairs}  # what dedupe drops
    right = {p for p in flagged if SPLITS.index(first[photo(p)]) < SPLITS.index(split_of[p])}
    return {"photos_in_two_splits": len(leaked), "found": len(found & leaked), "recall": len(found & leaked) / max(len(leaked), 1),
            "pairs": len(pairs), "true_pairs": len(true), "precision": len(true) / max(len(pairs), 1),
            "dropped": len(flagged), "dropped_right": len(right), "drop_precision": len(right) / max(len(flagged), 1)}


def scene_counts(pairs: list[tuple[Path, Path, float]], alias: dict[str, str]) -> dict[str, int]:
    """Same-scene pairs: all, of one photo by name/alias (copies the alignment check missed), of two photos."""
    same = sum(alias.get(photo_of(a), photo_of(a)) == alias.get(photo_of(b), photo_of(b)) for a, b, _ in pairs)
    return {"scene_pairs": len(pairs), "scene_one_photo": same, "scene_two_photos": len(pairs) - same}


def by_kind(pairs: list) -> tuple[list[tuple[Path, Path, float]], list[tuple[Path, Path, float]]]:
    """(copies, same-scene pairs) as (a, b, distance) triples."""
    triples = [(p.kind, (p.a, p.b, p.distance)) for p in pairs]
    return [t for kind, t in triples if kind == COPY], [t for kind, t in triples if kind == SAME_SCENE]


def machine() -> str:
    """CPU model (as lscpu's 'Model name'), cores and the date, for a results row."""
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
             if line.startswith("model name")]
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    return f"{names[0] if names else os.uname().machine}, {os.cpu_count()} CPUs, {date}"


def build_speed_set(sample: Path, tmp: Path, n: int, seed: int) -> tuple[list[Path], list[str]]:
    """n images: augmented copies of the sample's photos, 70/20/10 over the splits."""
    rng = random.Random(seed)
    sources = sorted((sample / "drywall" / "train").glob("*.jpg")) + sorted((sample / "cracks" / "train" / "images").glob("*.jpg"))
    images = {p: cv2.imread(str(p)) for p in sources}
    paths, groups = [], []
    for i in range(n):
        src = sources[i % len(sources)]
        out = tmp / f"speed-{i:05d}.jpg"
        cv2.imwrite(str(out), np.ascontiguousarray(augment(images[src], rng.choice(KINDS), rng)), [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(out)
        groups.append(rng.choices(SPLITS, weights=(7, 2, 1))[0])
    return paths, groups


def pseudo_split_drywall(sample: Path, out: Path, seed: int) -> Path:
    """A COCO root from the sample's drywall train: one copy of every multi-copy photo moved to valid/."""
    rng = random.Random(seed)
    source = sample / "drywall" / "train"
    coco = json.loads((source / "_annotations.coco.json").read_text())
    by_photo: dict[str, list[dict]] = {}
    for image in coco["images"]:
        by_photo.setdefault(photo_of(Path(image["file_name"])), []).append(image)
    valid_ids = {rng.choice(images)["id"] for images in by_photo.values() if len(images) > 1}
    for split, keep in (("train", lambda i: i not in valid_ids), ("valid", lambda i: i in valid_ids)):
        (out / split).mkdir(parents=True)
        images = [im for im in coco["images"] if keep(im["id"])]
        for im in images:
            shutil.copy2(source / im["file_name"], out / split / im["file_name"])
        ids = {im["id"] for im in images}
        part = {**coco, "images": images, "annotations": [a for a in coco["annotations"] if a["image_id"] in ids]}
        (out / split / "_annotations.coco.json").write_text(json.dumps(part))
    return out


def real_sample_figure(sample: Path, figure: Path, seed: int, options: dict) -> str:
    """Audit the real sample (drywall pseudo-split into train/valid) with these duplicate options, save the figure and
    return a results row."""
    with tempfile.TemporaryDirectory() as tmp:
        drywall = pseudo_split_drywall(sample, Path(tmp) / "drywall", seed)
        report = audit({"crack": sample / "cracks", "taping": drywall}, **options)
        print(summary(report))
        paths = sorted(drywall.glob("*/*.jpg"))
        groups = [p.parent.name for p in paths]
        taping = [d for d in report["cross_split_duplicates"] if d["class"] == "taping"]
        pairs = [(Path(d["a"]), Path(d["b"]), d["distance"]) for d in taping if d["kind"] == COPY]
        scenes = [(Path(d["a"]), Path(d["b"]), d["distance"]) for d in taping if d["kind"] == SAME_SCENE]
        alias = same_photo_aliases(paths)
        s, c = score(paths, groups, pairs, alias), scene_counts(scenes, alias)
        print(f"drywall export-like split: valid photos with a copy in train {s['photos_in_two_splits']}, found {s['found']} "
              f"(recall {s['recall']:.3f}); copy pairs {s['pairs']}, true {s['true_pairs']} (precision {s['precision']:.3f}); "
              f"valid files flagged for a copy {s['dropped']}, truly leaked {s['dropped_right']} ({s['drop_precision']:.3f}); "
              f"same-scene pairs {c['scene_pairs']} ({c['scene_one_photo']} of one photo, {c['scene_two_photos']} of two), "
              f"valid files flagged in all {len({b for _, b, _ in pairs + scenes})}")
        row = (f"| audit duplicates, drywall export-like split (`--figure` run; {options}) | {machine()}, load "
               f"{os.getloadavg()[0]:.1f} | {len(paths)} drywall images ({groups.count('train')} train / "
               f"{groups.count('valid')} valid) | valid photos found {s['found']}/{s['photos_in_two_splits']} "
               f"({s['recall']:.3f}); copy pairs {s['pairs']}, true {s['true_pairs']} ({s['precision']:.3f}); valid files "
               f"flagged for a copy {s['dropped']}, truly leaked {s['dropped_right']} ({s['drop_precision']:.3f}); "
               f"same-scene pairs {c['scene_pairs']} ({c['scene_one_photo']} of one photo, {c['scene_two_photos']} of two) | - |")
        audit_figure(report, figure, title="Audit of the real sample (drywall train split into train/valid by photo, as Roboflow "
                     "exports leak).\nPhotos: Roboflow Universe 'cracks' (segmentation-nlngf) and 'Drywall-Join-Detect' "
                     "(objectdetect-pu6rn), CC BY 4.0")
    print(f"figure: {figure}")
    return row


def main() -> None:
    """Run the accuracy check (and the speed check with --speed) and append a results row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/data/roboflow-sample")
    parser.add_argument("--speed", type=int, default=0, help="also time the search on this many images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("audit_results.md"))
    parser.add_argument("--figure", type=Path, default=None, help="also audit the real sample and save its figure here")
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--min-inliers", type=int, default=12)
    parser.add_argument("--min-alignment", type=float, default=0.5)
    parser.add_argument("--max-misfit", type=float, default=0.8)
    parser.add_argument("--fine-side", type=int, default=640, help="side of the second verification pass (0: none)")
    args = parser.parse_args()
    options = {"top_k": args.top_k, "min_inliers": args.min_inliers, "min_alignment": args.min_alignment,
               "max_misfit": args.max_misfit, "fine_side": args.fine_side}
    where = machine()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths, groups = build_accuracy_set(args.sample, Path(tmp), args.seed)
        start, cpu = time.perf_counter(), time.process_time()
        pairs, scenes = by_kind(find_photo_pairs(paths, groups, **options))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        alias = same_photo_aliases(paths)
        s, c = score(paths, groups, pairs, alias), scene_counts(scenes, alias)
        print(f"accuracy set: {len(paths)} images, {seconds:.1f} s wall, {cpu:.1f} s CPU; photos in two splits {s['photos_in_two_splits']}, "
              f"found {s['found']} (recall {s['recall']:.3f}); reported copy pairs {s['pairs']}, true {s['true_pairs']} "
              f"(precision {s['precision']:.3f}); files dedupe would drop for a copy {s['dropped']}, with a copy in an earlier "
              f"split {s['dropped_right']} ({s['drop_precision']:.3f}); same-scene pairs {c['scene_pairs']} "
              f"({c['scene_one_photo']} of one photo, {c['scene_two_photos']} of two photos)")
        rows.append(f"| audit duplicates, real sample ({options}) | {where}, load {os.getloadavg()[0]:.1f} | {len(paths)} images | "
                    f"copies: recall {s['recall']:.3f} ({s['found']}/{s['photos_in_two_splits']}), pair precision "
                    f"{s['precision']:.3f} ({s['true_pairs']}/{s['pairs']}), dropped-file precision {s['drop_precision']:.3f}; "
                    f"same-scene pairs {c['scene_pairs']} ({c['scene_one_photo']} of one photo, {c['scene_two_photos']} of two) | "
                    f"{len(paths) / seconds:.1f} images/s |")
        print("identical photos under different names:", sorted((k, v) for k, v in alias.items() if k != v))
        for a, b, d in pairs:
            if alias.get(photo_of(a), photo_of(a)) != alias.get(photo_of(b), photo_of(b)):
                print(f"  false copy: {a.name} {b.name} distance {d}")
        for a, b, d in scenes:
            print(f"  same scene: {a.name} {b.name} distance {d}")
        if args.speed:
            paths, groups = build_speed_set(args.sample, Path(tmp), args.speed, args.seed)
            start, cpu = time.perf_counter(), time.process_time()
            pairs, scenes = by_kind(find_photo_pairs(paths, groups, **options))
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            print(f"speed set: {len(paths)} images in {seconds:.0f} s wall = {len(paths) / seconds:.1f} images/s; "
                  f"{cpu:.0f} CPU-seconds = {len(paths) / cpu * 2:.1f} images/s on 2 idle cores; {len(pairs)} copy pairs, "
                  f"{len(scenes)} same-scene pairs")
            rows.append(f"| audit duplicates, speed ({options}) | {where}, load {os.getloadavg()[0]:.1f} | {len(paths)} augmented copies | "
                        f"{len(pairs)} copy pairs, {len(scenes)} same-scene | {len(paths) / seconds:.1f} images/s wall ({seconds:.0f} s), "
                        f"{cpu:.0f} CPU-s |")
    if args.figure is not None:
        rows.append(real_sample_figure(args.sample, args.figure, args.seed, options))
    if not args.results.exists():
        args.results.write_text("| benchmark | machine | data | result | speed |\n|---|---|---|---|---|\n")
    with args.results.open("a") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
