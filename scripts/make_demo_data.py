"""Build data/demo/ (the main job's extra real photos) from the real Roboflow sample in ../shared.

One file per photo (copies share a photo_key), none that data/sample already ships, chosen with a fixed
seed; images downsized to DEMO_SIDE px (the model sees 224 px) and masks rasterised from the labels at the
original size, then resized with nearest neighbour, written in the seed layout (images/ + masks/).

    python scripts/make_demo_data.py [--source ../shared/data/roboflow-sample] [--per-class 40]
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

from textseg.data.datasets import list_samples, load_target, photo_key, resize_pair
from textseg.data.images import load_image, save_mask, save_rgb

REPO = Path(__file__).resolve().parents[1]
DEMO_SIDE = 320
ROOTS = {"crack": ("cracks", "cracks"), "taping": ("drywall", "drywall")}  # class -> (source folder, demo folder)


def shipped_keys() -> set[str]:
    """photo_keys of every image already under data/sample (never duplicated into the demo)."""
    return {photo_key(p) for p in (REPO / "data" / "sample").rglob("*.jpg")}


def pick(source: Path, cls: str, count: int, exclude: set[str], seed: int) -> list:
    """count samples of one class with distinct photo_keys outside exclude, in a seeded random order."""
    by_key: dict[str, object] = {}
    for sample in sorted(list_samples(source, "train", cls), key=lambda s: s.image.name):
        by_key.setdefault(photo_key(sample.image), sample)
    keys = sorted(set(by_key) - exclude)
    random.Random(seed).shuffle(keys)
    return [by_key[k] for k in keys[:count]]


def write(sample, dest: Path) -> None:
    """The sample's image (JPEG, quality 85) and mask (PNG) at DEMO_SIDE px on the longer side."""
    image, mask = load_image(sample.image), load_target(sample)
    scale = DEMO_SIDE / max(image.shape[:2])
    small_image, small_mask = resize_pair(image, mask, (round(image.shape[1] * scale), round(image.shape[0] * scale)))
    save_rgb(small_image, dest / "images" / sample.image.name, quality=85)
    save_mask(small_mask, dest / "masks" / f"{sample.image.stem}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data" / "roboflow-sample")
    parser.add_argument("--out", type=Path, default=REPO / "data" / "demo")
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    exclude = shipped_keys()
    for cls, (source_name, demo_name) in ROOTS.items():
        dest = args.out / demo_name / "train"
        if dest.exists():
            shutil.rmtree(dest)
        chosen = pick(args.source / source_name, cls, args.per_class, exclude, args.seed)
        for sample in chosen:
            write(sample, dest)
        print(f"{cls}: {len(chosen)} photos -> {dest}")


if __name__ == "__main__":
    main()
