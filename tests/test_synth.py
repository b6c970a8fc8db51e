"""Synthetic datasets: determinism, masks made from labels, label kinds, negatives, CLI tree, figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from textseg.cli import main
from textseg.data.datasets import list_samples
from textseg.data.images import image_size, load_image, load_mask
from textseg.data.labels import parse_yolo_file, rasterize_yolo
from textseg.data.synth import SPLITS, SynthConfig, compare_with_real, generate

SMALL = SynthConfig(size_range=(128, 176), negative_fraction=0.25)
COUNTS = {"train": 6, "valid": 2, "test": 2}


def tree(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synth_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small generation shared by the read-only tests."""
    return generate(tmp_path_factory.mktemp("synth"), seed=3, counts=COUNTS, config=SMALL)


def pairs(root: Path, split: str) -> list[tuple[Path, Path, Path]]:
    """(image, label, mask) triples of one split, by basename."""
    split_dir = root / split
    return [(img, split_dir / "labels" / f"{img.stem}.txt", split_dir / "masks" / f"{img.stem}.png")
            for img in sorted((split_dir / "images").glob("*.jpg"))]


def test_generate_writes_both_roots_in_seed_layout(synth_roots: dict[str, Path]) -> None:
    assert set(synth_roots) == {"crack", "taping"}
    assert synth_roots["crack"].name == "cracks" and synth_roots["taping"].name == "drywall"
    for cls, root in synth_roots.items():
        for split in SPLITS:
            triples = pairs(root, split)
            assert len(triples) == COUNTS[split]
            assert all(label.is_file() and mask.is_file() for _, label, mask in triples)
            assert len(list_samples(root, split, cls)) == COUNTS[split]  # the dataset layer reads it as is


def test_same_seed_same_bytes_other_seed_other_images(tmp_path: Path) -> None:
    a = tree(generate(tmp_path / "a", seed=1, counts={"train": 3, "valid": 1, "test": 1}, config=SMALL)["crack"].parent)
    b = tree(generate(tmp_path / "b", seed=1, counts={"train": 3, "valid": 1, "test": 1}, config=SMALL)["crack"].parent)
    c = tree(generate(tmp_path / "c", seed=2, counts={"train": 3, "valid": 1, "test": 1}, config=SMALL)["crack"].parent)
    assert a == b
    assert len(a) == 2 * 5 * 3 + 2  # 5 images per class, each with label and mask, plus two synth.json
    images = [k for k in a if k.endswith(".jpg")]
    assert all(a[k] != c[k] for k in images)


def test_counts_of_one_split_do_not_change_other_images(tmp_path: Path) -> None:
    few = tree(generate(tmp_path / "few", seed=0, counts={"train": 2, "valid": 1, "test": 0}, config=SMALL)["crack"])
    more = tree(generate(tmp_path / "more", seed=0, counts={"train": 4, "valid": 1, "test": 2}, config=SMALL)["crack"])
    shared = [k for k in few if k.endswith((".jpg", ".txt", ".png"))]
    assert len(shared) == 9
    assert all(few[k] == more[k] for k in shared)


def test_masks_equal_rasterised_labels(synth_roots: dict[str, Path]) -> None:
    for root in synth_roots.values():
        for split in SPLITS:
            for image, label, mask_path in pairs(root, split):
                width, height = image_size(image)
                expected = rasterize_yolo(parse_yolo_file(label), width, height)
                mask = load_mask(mask_path)
                assert mask.shape == (height, width)
                np.testing.assert_array_equal(mask, expected, err_msg=str(mask_path))


def test_label_kinds_and_foreground_fractions(synth_roots: dict[str, Path]) -> None:
    fractions: dict[str, list[float]] = {"crack": [], "taping": []}
    for cls, root in synth_roots.items():
        for split in SPLITS:
            for _, label, mask_path in pairs(root, split):
                shapes = parse_yolo_file(label)
                assert {s.kind for s in shapes} <= ({"polygon"} if cls == "crack" else {"box"})
                assert all(s.cls_id == 0 for s in shapes)
                if shapes:
                    fractions[cls].append(float(load_mask(mask_path).mean()))
    assert fractions["crack"] and fractions["taping"]
    assert 0.003 < min(fractions["crack"]) and max(fractions["crack"]) < 0.4  # thin bands
    assert 0.01 < min(fractions["taping"]) and max(fractions["taping"]) <= 1.0  # seam boxes
    assert np.median(fractions["taping"]) > np.median(fractions["crack"])


def test_true_negatives_have_empty_labels_and_masks(tmp_path: Path) -> None:
    cfg = SynthConfig(size_range=(128, 160), negative_fraction=0.6)
    roots = generate(tmp_path, seed=0, counts={"train": 8, "valid": 0, "test": 0}, config=cfg)
    for root in roots.values():
        triples = pairs(root, "train")
        empty = [(label, mask) for _, label, mask in triples if label.read_text().strip() == ""]
        assert 0 < len(empty) < len(triples)
        assert all(not load_mask(mask).any() for _, mask in empty)


def test_crack_masks_sit_on_dark_pixels(synth_roots: dict[str, Path]) -> None:
    inside, outside = [], []
    for _, label, mask_path in pairs(synth_roots["crack"], "train") + pairs(synth_roots["crack"], "valid"):
        mask = load_mask(mask_path)
        if not mask.any():
            continue
        gray = load_image(label.parent.parent / "images" / f"{label.stem}.jpg").mean(axis=2)
        wall = gray > 20  # leave out the black corners of rotated images
        inside.append(np.percentile(gray[mask & wall], 2))  # the crack core is the darkest part of the wall
        outside.append(np.percentile(gray[~mask & wall], 2))
    assert inside and all(i < o - 10 for i, o in zip(inside, outside)), (inside, outside)


def test_bad_counts_and_sizes_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="splits must be"):
        generate(tmp_path / "a", counts={"training": 2})
    with pytest.raises(ValueError, match="size range"):
        generate(tmp_path / "b", counts={"train": 1, "valid": 0, "test": 0}, config=SynthConfig(size_range=(300, 100)))
    with pytest.raises(ValueError, match="negative fraction"):
        generate(tmp_path / "c", config=SynthConfig(negative_fraction=1.5))


def test_cli_writes_tree_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["synth", "--out", str(tmp_path), "--seed", "5", "--train", "2", "--valid", "1", "--test", "1", "--size-range", "128,160"]
    assert main(args) == 0
    assert f"crack={tmp_path / 'cracks'}" in capsys.readouterr().out
    for name in ("cracks", "drywall"):
        for split, n in (("train", 2), ("valid", 1), ("test", 1)):
            for folder, ext in (("images", ".jpg"), ("labels", ".txt"), ("masks", ".png")):
                files = sorted((tmp_path / name / split / folder).iterdir())
                assert [f.suffix for f in files] == [ext] * n, (name, split, folder)
    assert main(args) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


def test_compare_with_real_writes_figure(synth_roots: dict[str, Path], tmp_path: Path) -> None:
    out = compare_with_real(synth_roots, synth_roots, tmp_path / "cmp.png", n=2, seed=0)
    assert out.is_file() and load_image(out).shape[0] > 200
