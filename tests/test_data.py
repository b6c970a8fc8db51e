"""Layouts, pairing, photo-grouped splits, data specs and the SegDataset."""

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from textseg.data.datasets import (
    GROUPS_FILE,
    SEQUENCE_GAP,
    SEQUENCE_SECONDS,
    DatasetError,
    Sample,
    SegDataset,
    add_data_arguments,
    available_splits,
    camera_shot,
    collect_split,
    detect_layout,
    list_samples,
    load_target,
    parse_data_specs,
    photo_key,
    read_photo_groups,
    split_train_val,
)
from textseg.data.images import load_mask
from textseg.data.labels import LabelError, extract_masks
from textseg.prompts import NONE, PROMPTS, UNRELATED

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def copy_sample(tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    shutil.copytree(SAMPLE / name, dst)
    return dst


def masks_root(tmp_path: Path, images: dict[str, Image.Image], masks: dict[str, np.ndarray], split="train") -> Path:
    """A seed-layout root with the given images (name -> PIL image) and masks (stem -> bool array)."""
    root = tmp_path / "root"
    (root / split / "images").mkdir(parents=True, exist_ok=True)
    (root / split / "masks").mkdir(parents=True, exist_ok=True)
    for name, img in images.items():
        img.save(root / split / "images" / name)
    for stem, m in masks.items():
        Image.fromarray(m.astype(np.uint8) * 255).save(root / split / "masks" / f"{stem}.png")
    return root


# ----------------------------------------------------------------------------- layouts and pairing

def test_detect_layout_on_vendored_roots(tmp_path):
    assert detect_layout(SAMPLE / "cracks" / "train") == "masks"
    assert detect_layout(SAMPLE / "cracks" / "test") == "coco"
    assert detect_layout(SAMPLE / "drywall" / "train") == "coco"
    assert detect_layout(SAMPLE / "cracks-yolo" / "train") == "yolo"
    assert available_splits(SAMPLE / "cracks") == ["train", "test"]
    (tmp_path / "odd" / "pics").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"unknown layout \(found \['pics'\]\)"):
        detect_layout(tmp_path / "odd")
    with pytest.raises(FileNotFoundError, match="no such split folder"):
        detect_layout(tmp_path / "missing")


def test_list_samples_each_layout():
    seed = list_samples(SAMPLE / "cracks", "train", "cracks")
    assert len(seed) == 8 and all(s.mask and s.mask.stem == s.image.stem and s.cls == "crack" for s in seed)
    coco = list_samples(SAMPLE / "drywall", "train", "taping")
    assert len(coco) == 13 and all(s.mask is None and s.coco.name == "_annotations.coco.json" for s in coco)
    yolo = list_samples(SAMPLE / "cracks-yolo", "train", "crack")
    assert len(yolo) == 2 and all(s.mask is None and s.label.stem == s.image.stem for s in yolo)


def test_in_memory_targets_equal_extracted_masks(tmp_path):
    drywall = copy_sample(tmp_path, "drywall")
    before = {s.image.name: load_target(s) for s in list_samples(drywall, "train", "taping")}
    extract_masks(drywall)
    after = list_samples(drywall, "train", "taping")
    assert all(s.mask is not None for s in after)
    for s in after:
        assert np.array_equal(load_target(s), before[s.image.name])
    assert sum(not m.any() for m in before.values()) == 1
    yolo = list_samples(SAMPLE / "cracks-yolo", "train", "crack")
    assert all(load_target(s).shape == (640, 640) and load_target(s).sum() > 1000 for s in yolo)


def test_pairing_errors_are_listed_together(tmp_path):
    cracks = copy_sample(tmp_path, "cracks")
    masks = sorted((cracks / "train" / "masks").iterdir())
    masks[0].unlink()
    masks[1].unlink()
    shutil.copy(masks[2], cracks / "train" / "masks" / "stray.png")
    with pytest.raises(DatasetError) as err:
        list_samples(cracks, "train", "crack")
    msg = str(err.value)
    assert "3 problems" in msg and "masks layout" in msg
    assert f"image without mask: images/{masks[0].stem}.jpg" in msg
    assert f"image without mask: images/{masks[1].stem}.jpg" in msg
    assert "mask without image: masks/stray.png" in msg


def test_pairing_errors_yolo_and_coco(tmp_path):
    yolo = copy_sample(tmp_path, "cracks-yolo")
    label = next((yolo / "train" / "labels").iterdir())
    label.rename(label.with_name("other.txt"))
    with pytest.raises(DatasetError, match=r"(?s)2 problems.*image without label.*label without image: labels/other.txt"):
        list_samples(yolo, "train", "crack")
    drywall = copy_sample(tmp_path, "drywall")
    shutil.copy(next((drywall / "train").glob("*.jpg")), drywall / "train" / "unlisted.jpg")
    next(p for p in (drywall / "train").glob("IMG_*.jpg")).unlink()
    with pytest.raises(DatasetError, match=r"(?s)listed in _annotations.coco.json but missing: IMG_.*image not listed in _annotations.coco.json: unlisted.jpg"):
        list_samples(drywall, "train", "taping")


# ----------------------------------------------------------------------------- photo-grouped splits

def test_photo_key():
    assert photo_key(Path("IMG_8217_JPG_jpg.rf.50251caa320981a7ec3404abbc546504.jpg")) == "IMG_8217_JPG"
    assert photo_key("a/2000x1500_15_resized_jpg.rf.501b.jpg") == "2000x1500_15_resized"
    assert photo_key("1066-dat_png_jpg.rf.35fe.jpg") == "1066-dat_png"
    assert photo_key("x/plain_photo.png") == "plain_photo"


def test_split_train_val_keeps_copies_together_and_is_deterministic():
    samples = list_samples(SAMPLE / "drywall", "train", "taping")
    train, val = split_train_val(samples, 0.3, seed=0)
    assert len(train) + len(val) == 13 and val and train
    assert not {photo_key(s.image) for s in train} & {photo_key(s.image) for s in val}
    assert (train, val) == split_train_val(list(samples), 0.3, seed=0)
    vals = [split_train_val(samples, 0.3, seed=k)[1] for k in range(6)]
    assert all(abs(len(v) - 0.3 * 13) <= 1.5 for v in vals), [len(v) for v in vals]  # images; groups of up to 3
    assert len({tuple(s.image.name for s in v) for v in vals}) > 1


def sample(name: str, cls: str = "taping") -> Sample:
    """A sample that exists by name only (the carve reads names, not files)."""
    return Sample(Path("root/train") / name, None, cls, "train", Path("root"))


@pytest.mark.parametrize("key, shot", [
    ("IMG_8220_JPG", ("IMG_", 8220, SEQUENCE_GAP)),
    ("img_8220 (2)", ("IMG_", 8220, SEQUENCE_GAP)),
    ("DSC01234", ("DSC0", 1234, SEQUENCE_GAP)),
    ("P1010001", ("P101", 1, SEQUENCE_GAP)),
    ("IMG_20220627_111136-jpg_1500x2000", ("IMG_20220627", 11 * 3600 + 11 * 60 + 36, SEQUENCE_SECONDS)),
    ("PXL_20220627_111136123", ("PXL_20220627", 11 * 3600 + 11 * 60 + 36, SEQUENCE_SECONDS)),
    ("20220627_111136", ("20220627", 11 * 3600 + 11 * 60 + 36, SEQUENCE_SECONDS)),
    ("2000x1500_9_resized", None),  # renamed: the number is not shot order
    ("synth_cracks_train_00012", None),
    ("00028", None),
    ("10001234", None),
    ("crack205", None),
    ("IMG_123", None),
])
def test_camera_shot_reads_names_cameras_write(key, shot):
    assert camera_shot(key) == shot


def test_carve_keeps_a_camera_sequence_on_one_side():
    burst = ["IMG_8220_JPG_jpg.rf.a1.jpg", "IMG_8220_JPG_jpg.rf.b2.jpg", "IMG_8222_JPG_jpg.rf.c3.jpg",
             f"IMG_{8222 + SEQUENCE_GAP}.jpg"]  # one board: two copies of 8220, then two more shots
    later = 11 * 3600 + 11 * 60 + 36 + SEQUENCE_SECONDS  # seconds of the day of a shot SEQUENCE_SECONDS after 11:11:36
    timed = ["IMG_20220627_111136.jpg", f"IMG_20220627_{later // 3600:02d}{later // 60 % 60:02d}{later % 60:02d}.jpg"]
    far = [f"IMG_{8222 + 2 * SEQUENCE_GAP + 1}.jpg", "IMG_20220627_111500.jpg"]  # further on: another scene
    others = [f"wall_{c}.jpg" for c in "abcdefghijklmnopqrst"]
    samples = [sample(n) for n in burst + timed + far + others]
    sides = []
    for seed in range(40):
        val = {s.image.name for s in split_train_val(samples, 0.15, seed)[1]}
        assert len({n in val for n in burst}) == 1 and len({n in val for n in timed}) == 1, seed
        sides.append((burst[0] in val, far[0] in val, timed[0] in val, far[1] in val))
    assert any(b for b, _, _, _ in sides) and any(t for _, _, t, _ in sides)  # each sequence is held back sometimes
    assert any(b != f for b, f, _, _ in sides) and any(t != f for _, _, t, f in sides)  # the far shots are not merged


def test_numbered_names_that_are_not_shot_order_are_not_merged():
    samples = [sample(f"synth_cracks_train_{i:05d}.jpg", "crack") for i in range(20)]
    samples += [sample(f"2000x1500_{i}_resized_jpg.rf.{i}a.jpg") for i in range(20)]
    for seed in range(3):
        val = split_train_val(samples, 0.15, seed)[1]
        assert (sum(s.cls == "crack" for s in val), sum(s.cls == "taping" for s in val)) == (3, 3)


def test_carve_counts_images_and_keeps_both_sides():
    samples = [sample(f"IMG_{8000 + i}.jpg") for i in range(12)]  # one sequence: 12 images
    samples += [sample(f"wall_{i}_jpg.rf.{k}.jpg") for i in range(20) for k in range(2)]  # 20 photos, 2 copies each
    for seed in range(10):
        train, val = split_train_val(samples, 0.15, seed)
        assert abs(len(val) - 0.15 * 52) <= 12 / 2 and train, seed  # off by at most half a group
    one_big = [sample(f"IMG_{8000 + i}.jpg") for i in range(12)] + [sample("wall.jpg")]
    assert [s.image.name for s in split_train_val(one_big, 0.15, 0)[1]] == ["wall.jpg"]  # at least one group held back
    assert split_train_val(one_big, 0.0, 0)[1] == []


def test_split_train_val_extra_groups_merge_photos():
    samples = list_samples(SAMPLE / "cracks", "train", "crack")  # 8 distinct photos
    group = {samples[0].image, samples[1].image, samples[2].image}
    held = []
    for seed in range(10):
        train, val = split_train_val(samples, 0.25, seed, groups=[group])
        sides = {s.image in {v.image for v in val} for s in samples[:3]}
        assert len(sides) == 1
        held.append(sides.pop())
        valid = collect_split({"crack": SAMPLE / "cracks"}, "valid", 0.25, seed, groups=[group])
        assert [s.image for s in valid] == [s.image for s in val]
    assert any(held)  # the group is held back for some seed, as a whole
    relative = {Path(os.path.relpath(p)) for p in group}  # as an audit run from another folder writes them
    splits = [(split_train_val(samples, 0.25, k, groups=[relative]), split_train_val(samples, 0.25, k, groups=[group]),
               split_train_val(samples, 0.25, k)) for k in range(10)]
    assert all(rel == absolute for rel, absolute, _ in splits)
    assert any(absolute != none for _, absolute, none in splits)  # the group changes some carve
    with pytest.raises(ValueError, match="val_fraction 1.0"):
        split_train_val(samples, 1.0, 0)


def test_collect_split_carves_valid_from_train():
    roots = {"crack": SAMPLE / "cracks", "taping": SAMPLE / "drywall"}
    train = collect_split(roots, "train", val_fraction=0.3, seed=1)
    valid = collect_split(roots, "valid", val_fraction=0.3, seed=1)
    test = collect_split({"crack": SAMPLE / "cracks"}, "test")
    names = lambda xs: {s.image for s in xs}  # noqa: E731
    assert not names(train) & names(valid)
    assert len(train) + len(valid) == 8 + 13
    assert {s.cls for s in valid} == {"crack", "taping"} and all(s.split == "train" for s in valid)
    assert len(test) == 4 and all(s.split == "test" for s in test)
    with pytest.raises(DatasetError, match=r"no test/ split \(found \['train'\]\) for class taping"):
        collect_split(roots, "test")


def test_photo_groups_file_keeps_its_pairs_on_one_side(tmp_path):
    images = {f"wall{i}.png": Image.new("RGB", (8, 8), (10 * i, 0, 0)) for i in range(12)}
    root = masks_root(tmp_path, images, {f"wall{i}": np.ones((8, 8), bool) for i in range(12)})
    side = lambda seed: {s.image.name for s in collect_split({"crack": root}, "valid", 0.25, seed)}  # noqa: E731
    apart = [seed for seed in range(20) if ("wall3.png" in side(seed)) != ("wall7.png" in side(seed))]
    assert apart  # without the file, some carves put the two on different sides
    pairs = [{"a": "train/images/wall3.png", "b": "train/images/wall7.png", "kind": "same_scene", "distance": 0.4}]
    (root / GROUPS_FILE).write_text(json.dumps({"pairs": pairs}))
    assert read_photo_groups(root) == [{(root / "train/images/wall3.png").resolve(), (root / "train/images/wall7.png").resolve()}]
    for seed in apart:
        assert ("wall3.png" in side(seed)) == ("wall7.png" in side(seed))
    (root / GROUPS_FILE).write_text("{}")
    with pytest.raises(DatasetError, match="not a photo-groups file"):
        read_photo_groups(root)


# ----------------------------------------------------------------------------- specs

def test_parse_data_specs(tmp_path):
    roots = parse_data_specs([f"drywall={SAMPLE / 'drywall'}"], cracks_path=SAMPLE / "cracks")
    assert list(roots) == ["crack", "taping"] and roots["taping"] == SAMPLE / "drywall"
    with pytest.raises(ValueError, match="unknown class 'mold'"):
        parse_data_specs([f"mold={SAMPLE}"])
    with pytest.raises(ValueError, match="expected CLASS=ROOT"):
        parse_data_specs([str(SAMPLE)])
    with pytest.raises(FileNotFoundError, match="--data crack=.*nope does not exist"):
        parse_data_specs([f"crack={tmp_path / 'nope'}"])
    with pytest.raises(ValueError, match="class 'crack' given twice"):
        parse_data_specs([f"crack={SAMPLE / 'cracks'}"], cracks_path=SAMPLE / "cracks")
    parser = argparse.ArgumentParser()
    add_data_arguments(parser)
    args = parser.parse_args(["--data", "crack=a", "--data", "taping=b", "--drywall-path", "c"])
    assert args.data == ["crack=a", "taping=b"] and args.drywall_path == Path("c") and args.cracks_path is None


# ----------------------------------------------------------------------------- SegDataset

def test_dataset_items_shapes_and_values():
    samples = collect_split({"crack": SAMPLE / "cracks", "taping": SAMPLE / "drywall"}, "train", 0.0)
    ds = SegDataset(samples[:3] + samples[-2:], image_size=32)
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0 and item["image"].max() > 0.2
    assert item["mask"].shape == (1, 32, 32) and set(item["mask"].unique().tolist()) <= {0.0, 1.0}
    assert item["prompt"] in PROMPTS["crack"] and item["cls"] == "crack" and item["negative"] is False
    assert item["flip"] == 0 and item["index"] == 0 and item["path"].endswith(".jpg")
    assert ds[4]["cls"] == "taping" and ds[4]["prompt"] in PROMPTS["taping"]


def test_negative_and_prompt_sampling_statistics():
    samples = list_samples(SAMPLE / "cracks", "train", "crack")
    ds = SegDataset(samples * 200, negative_rate=0.3, flip=True, seed=3, unrelated_rate=0.15)  # draws only; nothing is loaded
    draws = [ds.draw(i) for i in range(len(ds))]
    negatives = [d for d in draws if d[3] == "taping"]
    unrelated = [d for d in draws if d[3] == NONE]
    assert 0.26 < len(negatives) / len(draws) < 0.34 and 0.12 < len(unrelated) / len(draws) < 0.18
    assert all(n and p in PROMPTS["taping"] for n, p, _, _ in negatives)
    assert all(n and p in UNRELATED for n, p, _, _ in unrelated)
    assert all(p in PROMPTS["crack"] for n, p, _, c in draws if not n and c == "crack")
    assert len({p for n, p, _, _ in draws if not n}) > 0.9 * len(PROMPTS["crack"])  # varied phrasings, not a few codes
    assert 0.45 < np.mean([f for _, _, f, _ in draws]) < 0.55
    assert [ds.draw(i) for i in range(50)] == draws[:50]  # pure function of (seed, epoch, index)
    ds.set_epoch(1)
    epoch1 = [ds.draw(i) for i in range(len(ds))]
    assert epoch1 != draws
    ds.set_epoch(0)
    assert [ds.draw(i) for i in range(len(ds))] == draws
    assert SegDataset(samples, negative_rate=0.0).draw(0)[0] is False
    with pytest.raises(ValueError, match="negative_rate 1.5"):
        SegDataset(samples, negative_rate=1.5)
    with pytest.raises(ValueError, match="must not exceed 1"):
        SegDataset(samples, negative_rate=0.6, unrelated_rate=0.5)


def test_negative_items_have_empty_masks_and_preload_matches():
    samples = list_samples(SAMPLE / "cracks", "train", "crack")
    ds = SegDataset(samples, image_size=48, negative_rate=0.5, flip=True, seed=0)
    pre = SegDataset(samples, image_size=48, negative_rate=0.5, flip=True, seed=0, preload=True)
    seen = set()
    for i in range(len(ds)):
        a, b = ds[i], pre[i]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"]) and a["prompt"] == b["prompt"]
        assert a["has_mask"] is True  # the photo's own crack mask, even where the target was emptied
        if a["negative"]:
            assert a["mask"].sum() == 0 and a["prompt"] in PROMPTS["taping"] and a["prompt_cls"] == "taping"
        else:
            assert a["mask"].sum() > 0 and a["prompt_cls"] == "crack"
        seen.add(a["negative"])
    assert seen == {True, False}


def test_image_and_mask_stay_aligned_after_resize_and_flip(tmp_path):
    arr = np.zeros((60, 90, 3), np.uint8)
    target = np.zeros((60, 90), bool)
    arr[10:40, 5:30] = (255, 0, 0)  # a red block on the left, and its mask
    target[10:40, 5:30] = True
    root = masks_root(tmp_path, {"a.png": Image.fromarray(arr)}, {"a": target})
    ds = SegDataset(list_samples(root, "train", "crack"), image_size=30, flip=True, seed=0)
    flips = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        item = ds[0]
        red = item["image"][0] > 0.5  # (30, 30)
        mask = item["mask"][0] > 0.5
        flips.add(item["flip"])
        assert (red == mask).float().mean() > 0.98
        left = mask[:, :15].sum() > mask[:, 15:].sum()
        assert left == (item["flip"] == 0)
    assert flips == {0, 1}


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "P"])
def test_grayscale_rgba_16bit_images_load_as_rgb(tmp_path, mode):
    base = np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (20, 1))
    if mode == "I;16":
        img = Image.fromarray(base.astype(np.uint16) * 257)
    elif mode == "RGBA":
        img = Image.fromarray(np.dstack([base, base, base, np.full_like(base, 255)]))
    else:
        img = Image.fromarray(base).convert(mode)
    target = np.zeros((20, 40), bool)
    target[:, 20:] = True
    root = masks_root(tmp_path, {"a.png": img}, {"a": target})
    item = SegDataset(list_samples(root, "train", "crack"), image_size=16)[0]
    assert item["image"].shape == (3, 16, 16)
    assert torch.allclose(item["image"][0], item["image"][2], atol=0.02)  # grey stays grey
    assert item["image"][0, :, -1].mean() > 0.9 and item["image"][0, :, 0].mean() < 0.1
    assert item["mask"][0, :, 8:].all() and not item["mask"][0, :, :8].any()


def test_size_mismatch_between_image_and_mask(tmp_path):
    root = masks_root(tmp_path, {"a.png": Image.new("RGB", (40, 20))}, {"a": np.zeros((10, 10), bool)})
    with pytest.raises(DatasetError, match="a.png: image is 40x20 but its mask is 10x10"):
        SegDataset(list_samples(root, "train", "crack"))[0]
    assert load_mask(root / "train" / "masks" / "a.png").shape == (10, 10)


def test_coco_root_with_custom_categories_lists_and_loads_after_extraction(tmp_path):
    drywall = copy_sample(tmp_path, "drywall")
    json_path = drywall / "train" / "_annotations.coco.json"
    data = json.loads(json_path.read_text())
    data["categories"] = [{"id": 0, "name": "walls", "supercategory": "none"}, {"id": 1, "name": "line", "supercategory": "walls"}]
    json_path.write_text(json.dumps(data))
    samples = list_samples(drywall, "train", "taping")  # listing needs no class mapping
    with pytest.raises(LabelError, match="run textseg extract-masks with --class-map 'line=crack'"):
        load_target(samples[0])
    extract_masks(drywall, class_map={"line": "taping"})
    samples = list_samples(drywall, "train", "taping")
    assert all(s.mask is not None for s in samples)
    assert sum(load_target(s).any() for s in samples) == 12


def test_vendored_demo_photos_are_a_clean_seed_layout_root():
    """data/demo (the main job's extra real photos): images with same-sized masks, one file per photo, none of them
    also in data/sample (the main job merges both), and both vendored folders together under 3 MB."""
    demo = SAMPLE.parent / "demo"
    keys = set()
    for cls, name in (("crack", "cracks"), ("taping", "drywall")):
        assert detect_layout(demo / name / "train") == "masks"
        samples = list_samples(demo / name, "train", cls)
        assert len(samples) == 40
        for s in samples:
            mask = load_target(s)
            assert mask.shape == Image.open(s.image).size[::-1]
            keys.add(photo_key(s.image))
        assert sum(bool(load_target(s).any()) for s in samples) >= 35  # nearly all show their defect
    assert len(keys) == 80
    assert not keys & {photo_key(p) for p in SAMPLE.rglob("*.jpg")}
    size = sum(p.stat().st_size for p in SAMPLE.parent.rglob("*") if p.is_file())
    assert size < 3_000_000, f"vendored photos take {size / 1e6:.2f} MB"
