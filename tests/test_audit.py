"""Tests of textseg.data.audit: near-duplicates across splits, dataset checks, report, dedupe, CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from textseg.cli import main
from textseg.data import audit as A
from textseg.data import duplicates as D
from textseg.data.datasets import read_photo_groups

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
COPIES_111136 = ("IMG_20220627_111136-jpg_1500x2000_jpg.rf.5e2bd44e29d1294fb0887decbd9b9710.jpg",  # id 70
                 "IMG_20220627_111136-jpg_1500x2000_jpg.rf.0bc5210143be76ff8d4133539b6a66aa.jpg")  # id 349


def texture(seed: int, size: int = 192) -> np.ndarray:
    """A distinct random wall-like texture with a few dark strokes, uint8 RGB (size, size, 3)."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.normal(128, 40, (size, size)).astype(np.float32), (0, 0), 1.5)
    base += cv2.resize(rng.normal(0, 30, (6, 6)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    for _ in range(3):
        p0, p1 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        cv2.line(base, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 40.0, 2)
    tint = rng.uniform(0.8, 1.2, 3)
    return np.clip(base[..., None] * tint, 0, 255).astype(np.uint8)


def rotate_crop(image: np.ndarray, angle: float = 10.0) -> np.ndarray:
    """Rotate by `angle` degrees, crop the central 80%, resize back (a Roboflow-style copy)."""
    h, w = image.shape[:2]
    rotated = cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), (w, h))
    crop = rotated[h // 10:h - h // 10, w // 10:w - w // 10]
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)


def speckled_board(seed: int, size: int = 1280) -> np.ndarray:
    """A plain board with faint one-pixel specks, uint8 RGB: too fine for ORB at 400 px, enough at 640 px."""
    rng = np.random.default_rng(seed)
    board = np.full((size, size), 200, np.float32)
    board += cv2.resize(rng.normal(0, 6, (5, 5)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    x, y = rng.integers(0, size, (2, 5000))
    board[y, x] = 200 - 40 * rng.uniform(0.6, 1.4, 5000)
    return np.repeat(np.clip(board, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def perspective(image: np.ndarray, shift: float = 0.15) -> np.ndarray:
    """The same wall seen from another spot: two corners pulled in by `shift` of the side (not an affine map)."""
    h, w = image.shape[:2]
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    moved = np.float32([[shift * w, shift * h], [w - shift * w, 0], [w, h], [0, h - shift * h]])
    return cv2.warpPerspective(image, cv2.getPerspectiveTransform(corners, moved), (w, h), borderMode=cv2.BORDER_REFLECT)


def shoot(wall: np.ndarray, corners: list[list[float]], gain: float, noise_seed: int, side: int = 320) -> np.ndarray:
    """A photo of a wall: the quad `corners` (fractions of the wall) seen square-on, lit by `gain` with a left-to-right
    falloff, with fresh sensor noise from `noise_seed`."""
    h, w = wall.shape[:2]
    quad = (np.float32(corners) * np.float32([w, h])).astype(np.float32)
    frame = np.float32([[0, 0], [side, 0], [side, side], [0, side]])
    photo = cv2.warpPerspective(wall.astype(np.float32), cv2.getPerspectiveTransform(quad, frame), (side, side))
    light = gain * np.linspace(0.85, 1.15, side, dtype=np.float32)[None, :, None]
    noise = np.random.default_rng(noise_seed).normal(0, 4, photo.shape)
    return np.clip(photo * light + noise, 0, 255).astype(np.uint8)


FRONT = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]  # the wall seen head-on
ASKEW = [[0.05, 0.15], [0.85, 0.05], [0.95, 0.95], [0.12, 0.82]]  # from a step to the side: a perspective view


def augmented(photo: np.ndarray) -> np.ndarray:
    """A Roboflow-style copy: mirrored, rotated 7 degrees, the central 5/6 cropped and resized back, 25% brighter."""
    h, w = photo.shape[:2]
    out = cv2.warpAffine(np.ascontiguousarray(photo[:, ::-1]), cv2.getRotationMatrix2D((w / 2, h / 2), 7, 1.0), (w, h))
    out = cv2.resize(out[h // 12:h - h // 12, w // 12:w - w // 12], (w, h))
    return np.clip(out.astype(np.float32) * 1.25, 0, 255).astype(np.uint8)


def hue_shift(image: np.ndarray) -> np.ndarray:
    """Brighter and hue-shifted copy."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + 25) % 180
    hsv[..., 2] = np.clip(hsv[..., 2] * 1.3, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def cutout(image: np.ndarray) -> np.ndarray:
    """Copy with three black squares."""
    out = image.copy()
    for x, y in ((10, 20), (90, 60), (40, 130)):
        out[y:y + 30, x:x + 30] = 0
    return out


PLANTED = {
    "flip": lambda im: im[:, ::-1],
    "rot90": lambda im: np.rot90(im),
    "rotcrop": rotate_crop,
    "hue": hue_shift,
    "cutout": cutout,
}


def save(image: np.ndarray, path: Path) -> Path:
    """Write an RGB array as an image file (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(image)).save(path, quality=92)
    return path


def tree_digest(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under root."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[str], dict[Path, Path]]:
    """8 distinct textures in train, 5 planted copies + 2 distinct textures in valid; {copy: original}."""
    folder = tmp_path_factory.mktemp("planted")
    originals = [save(texture(i), folder / f"train_{i}.jpg") for i in range(8)]
    copies = {save(fn(np.asarray(Image.open(originals[i]))), folder / f"valid_{name}.jpg"): originals[i]
              for i, (name, fn) in enumerate(PLANTED.items())}
    strangers = [save(texture(100 + i), folder / f"valid_new_{i}.jpg") for i in range(2)]
    paths = originals + list(copies) + strangers
    groups = ["train"] * len(originals) + ["valid"] * (len(copies) + len(strangers))
    return paths, groups, copies


def test_finds_planted_copies_across_splits_and_nothing_else(planted):
    paths, groups, copies = planted
    pairs = D.find_near_duplicates(paths, groups)
    found = {frozenset((a, b)) for a, b, _ in pairs}
    assert found == {frozenset((c, o)) for c, o in copies.items()}
    assert all(0.0 <= d < 1.0 for _, _, d in pairs)


def test_rotated_crop_is_a_copy_but_another_viewpoint_is_not(tmp_path):
    original = save(texture(3), tmp_path / "train.jpg")
    copy = save(rotate_crop(texture(3), 10.0), tmp_path / "valid_copy.jpg")
    reshot = save(perspective(texture(3)), tmp_path / "valid_reshot.jpg")
    pairs = D.find_near_duplicates([original, copy, reshot], ["train", "valid", "valid"])
    assert [{a, b} for a, b, _ in pairs] == [{original, copy}]
    geometry_only = {"min_alignment": 0.0, "max_misfit": float("inf")}
    assert D.find_near_duplicates([original, reshot], ["train", "valid"], **geometry_only) != []  # ORB + affine alone accept it


def test_kinds_of_an_augmented_copy_a_reshot_and_another_photo(tmp_path):
    wall = texture(7, size=640)
    photo = save(shoot(wall, FRONT, 1.0, noise_seed=1), tmp_path / "train_photo.jpg")
    other = save(shoot(texture(8, size=640), FRONT, 1.0, noise_seed=3), tmp_path / "train_other.jpg")
    copy = save(augmented(shoot(wall, FRONT, 1.0, noise_seed=1)), tmp_path / "valid_copy.jpg")
    reshot = save(shoot(wall, ASKEW, 0.8, noise_seed=2), tmp_path / "valid_reshot.jpg")  # same wall, other view and light
    distinct = save(shoot(texture(9, size=640), ASKEW, 0.9, noise_seed=4), tmp_path / "valid_distinct.jpg")
    paths, groups = [photo, other, copy, reshot, distinct], ["train", "train", "valid", "valid", "valid"]
    pairs = D.find_photo_pairs(paths, groups)
    assert [({p.a, p.b}, p.kind) for p in pairs] == [({photo, copy}, D.COPY), ({photo, reshot}, D.SAME_SCENE)]
    assert all(0.0 <= p.distance < 1.0 for p in pairs)
    assert [{a, b} for a, b, _ in D.find_near_duplicates(paths, groups)] == [{photo, copy}]


def test_merge_keeps_one_pair_prefers_copy_and_demotes_weak_copies():
    found = [D._Pair(0, 1, 40, 100, D.SAME_SCENE), D._Pair(1, 0, 50, 200, D.COPY),  # one pair, two passes
             D._Pair(0, 2, 100, 300, D.COPY), D._Pair(3, 6, 90, 100, D.COPY), D._Pair(3, 2, 30, 100, D.COPY),
             D._Pair(4, 5, 20, 100, D.SAME_SCENE)]
    merged = {(p.i, p.j): p.kind for p in D._merge(found, keep_ratio=0.8)}
    # 1-0: 50 inliers, under 0.8 of image 0's best copy (100), but image 1's best: a copy. 3-2: weak for both images
    assert merged == {(1, 0): D.COPY, (0, 2): D.COPY, (3, 6): D.COPY, (3, 2): D.SAME_SCENE, (4, 5): D.SAME_SCENE}


def test_second_pass_finds_speckled_copy_at_higher_resolution(tmp_path):
    original = save(speckled_board(1), tmp_path / "train.jpg")
    stranger = save(speckled_board(2), tmp_path / "train_other.jpg")
    copy = save(rotate_crop(speckled_board(1)), tmp_path / "valid.jpg")
    paths, groups = [original, stranger, copy], ["train", "train", "valid"]
    assert D.find_near_duplicates(paths, groups, fine_side=0) == []  # too few ORB matches at 400 px
    assert [{a, b} for a, b, _ in D.find_near_duplicates(paths, groups)] == [{original, copy}]


def test_alignment_of_identical_shifted_and_reshot_pixels():
    gray = cv2.cvtColor(texture(5, size=256), cv2.COLOR_RGB2GRAY)
    identity = np.float32([[1, 0, 0], [0, 1, 0]])
    agreement, misfit = D._alignment(gray, gray, identity)
    assert agreement > 0.99 and misfit < 0.1
    agreement, misfit = D._alignment(gray, gray, np.float32([[1, 0, 3], [0, 1, 0]]))  # a 3-pixel misfit
    assert agreement < 0.5 and misfit < 0.3  # edges disagree, but one affine shift explains it all
    reshot = cv2.cvtColor(perspective(texture(5, size=256)), cv2.COLOR_RGB2GRAY)
    assert D._alignment(gray, reshot, identity)[1] > 0.8  # perspective: local shifts vary over the image
    assert D._alignment(gray, np.zeros_like(gray), identity) == (0.0, float("inf"))  # nothing both images cover


def test_same_group_pairs_are_not_compared(planted):
    paths, _, _ = planted
    assert D.find_near_duplicates(paths, ["one"] * len(paths)) == []


def test_without_groups_every_pair_is_compared(planted):
    paths, _, copies = planted
    copy, original = next(iter(copies.items()))
    pairs = D.find_near_duplicates([original, copy, paths[-1]])
    assert [{a, b} for a, b, _ in pairs] == [{original, copy}]


def test_real_copies_found_and_distinct_real_photos_not_paired():
    drywall = sorted((SAMPLE / "drywall" / "train").glob("*.jpg"))
    cracks = sorted((SAMPLE / "cracks" / "train" / "images").glob("*.jpg")) + sorted((SAMPLE / "cracks" / "test").glob("*.jpg"))
    moved = [p for p in drywall if p.name in COPIES_111136]
    paths = drywall + cracks
    groups = ["valid" if p in moved else "train" for p in drywall] + ["train", "valid"] * (len(cracks) // 2)
    pairs = D.find_near_duplicates(paths, groups)
    keys = [(a.name.split("_jpg.rf.")[0], b.name.split("_jpg.rf.")[0]) for a, b, _ in pairs]
    assert all(ka == kb for ka, kb in keys), keys
    found = {p.name for a, b, _ in pairs for p in (a, b)}
    assert set(COPIES_111136) <= found


def test_unreadable_file_is_skipped_not_fatal(tmp_path, planted, caplog):
    paths, groups, _ = planted
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    pairs = D.find_near_duplicates([broken] + paths, ["valid"] + groups)
    assert len(pairs) == 5
    assert "broken.jpg: cannot decode image" in caplog.text


def test_group_length_mismatch_raises(planted):
    paths, _, _ = planted
    with pytest.raises(ValueError, match="3 group labels"):
        D.find_near_duplicates(paths, ["train"] * 3)


def make_dataset(root: Path) -> dict[str, Path]:
    """A masks-layout root with train/valid: a leaked copy, a re-shot, empty/tiny/mismatched masks, an unreadable image."""
    files: dict[str, Path] = {}
    full = np.zeros((192, 192), np.uint8)
    full[60:120, :] = 255
    for i in range(4):
        files[f"train{i}"] = save(texture(i), root / "train" / "images" / f"t{i}.jpg")
        save(np.repeat(full[..., None], 3, 2)[..., 0], root / "train" / "masks" / f"t{i}.png")
    files["leak"] = save(rotate_crop(texture(2)), root / "valid" / "images" / "leak.jpg")
    save(full, root / "valid" / "masks" / "leak.png")
    files["reshot"] = save(perspective(texture(3)), root / "valid" / "images" / "reshot.jpg")  # train3 from elsewhere
    save(full, root / "valid" / "masks" / "reshot.png")
    files["empty"] = save(texture(50), root / "valid" / "images" / "empty.jpg")
    save(np.zeros((192, 192), np.uint8), root / "valid" / "masks" / "empty.png")
    files["tiny"] = save(texture(51), root / "valid" / "images" / "tiny.jpg")
    tiny = np.zeros((192, 192), np.uint8)
    tiny[5, 5] = 255
    save(tiny, root / "valid" / "masks" / "tiny.png")
    files["mismatch"] = save(texture(52), root / "valid" / "images" / "mismatch.jpg")
    save(np.zeros((100, 120), np.uint8) + 255, root / "valid" / "masks" / "mismatch.png")
    files["broken"] = root / "valid" / "images" / "broken.jpg"
    files["broken"].write_bytes(b"\xff\xd8 truncated")
    save(full, root / "valid" / "masks" / "broken.png")
    return files


def test_audit_report_counts_masks_and_leaks(tmp_path):
    root = tmp_path / "cracks"
    files = make_dataset(root)
    report = A.audit([root])
    entry = report["roots"][0]
    assert entry["class"] == "crack"
    train, valid = entry["splits"]["train"], entry["splits"]["valid"]
    assert (train["images"], train["masks"], valid["images"], valid["masks"]) == (4, 4, 6, 5)
    assert [u["file"] for u in valid["unreadable"]] == [str(files["broken"])]
    assert "cannot read image" in valid["unreadable"][0]["error"]
    assert valid["size_mismatches"] == [{"image": str(files["mismatch"]), "image_size": [192, 192], "mask_size": [120, 100]}]
    assert valid["empty_masks"] == [str(files["empty"])]
    assert valid["tiny_masks"] == [str(files["tiny"])]
    assert sum(entry["foreground_histogram"]["counts"]) == 9
    assert len(entry["foreground_histogram"]["edges"]) == A.HIST_BINS + 1
    dup = report["cross_split_duplicates"]
    assert [(d["a"], d["b"], d["split_a"], d["split_b"], d["kind"]) for d in dup] == [
        (str(files["train2"]), str(files["leak"]), "train", "valid", "copy"),
        (str(files["train3"]), str(files["reshot"]), "train", "valid", "same_scene")]
    assert isinstance(dup[0]["distance"], float)
    assert entry["leaked"] == {"valid": 2}
    assert entry["leaked_by_kind"] == {"copy": {"valid": 1}, "same_scene": {"valid": 1}}
    text = A.summary(report)
    assert "cross-split duplicate pairs: 2 (copy 1, same_scene 1)" in text
    assert "files with a copy in an earlier split: valid 1" in text
    assert "files with another shot of the scene in an earlier split: valid 1" in text
    assert f"same_scene  train/{files['train3'].name}  ~  valid/{files['reshot'].name}" in text
    assert A.report_groups(report) == [{files["train2"], files["leak"]}, {files["train3"], files["reshot"]}]
    assert A.report_groups(report, kinds=[D.COPY]) == [{files["train2"], files["leak"]}]


def test_report_groups_reads_reports_written_before_kinds():
    old = {"cross_split_duplicates": [{"a": "r/train/x.jpg", "b": "r/valid/y.jpg", "distance": 0.2}]}
    assert A.report_groups(old) == [{Path("r/train/x.jpg"), Path("r/valid/y.jpg")}]
    assert A.report_groups(old, kinds=[D.SAME_SCENE]) == []


def test_figure_shows_both_kinds_best_first():
    pairs = [{"kind": D.COPY, "distance": d, "id": f"c{d}"} for d in (0.1, 0.2, 0.3)]
    pairs += [{"kind": D.SAME_SCENE, "distance": d, "id": f"s{d}"} for d in (0.5, 0.6)]
    assert [p["id"] for p in A.figure_pairs(pairs, 4)] == ["c0.1", "c0.2", "s0.5", "s0.6"]
    assert [p["id"] for p in A.figure_pairs(pairs, 3)] == ["c0.1", "c0.2", "s0.5"]
    assert [p["id"] for p in A.figure_pairs(pairs[:3], 2)] == ["c0.1", "c0.2"]  # no same-scene pair: copies fill in
    assert A.pair_label(pairs[3]) == "same scene, distance 0.500"
    assert A.pair_label(pairs[0]) == "copy, distance 0.100"


def test_a_plain_folder_is_audited_without_a_class(tmp_path, capsys):
    (tmp_path / "mydata" / "train").mkdir(parents=True)
    (tmp_path / "cracks").mkdir()
    assert A.parse_roots([tmp_path / "mydata", tmp_path / "cracks", f"taping={tmp_path / 'mydata'}"]) == [
        (None, tmp_path / "mydata"), ("crack", tmp_path / "cracks"), ("taping", tmp_path / "mydata")]
    with pytest.raises(FileNotFoundError, match="nowhere: no such dataset root"):
        A.parse_roots([tmp_path / "nowhere"])
    root = tmp_path / "walls"
    make_dataset(root)
    figure = tmp_path / "audit.png"
    assert main(["audit", str(root), "--no-duplicates", "--figure", str(figure)]) == 0
    out = capsys.readouterr().out
    assert f"{root} (class not given)" in out and "images" in out and figure.stat().st_size > 0


def test_cli_writes_json_figure_and_leak_free_copy(tmp_path, capsys):
    root = tmp_path / "data" / "walls"
    files = make_dataset(root)
    before = tree_digest(root)
    out = tmp_path / "clean"
    report_path, figure = tmp_path / "report.json", tmp_path / "audit.png"
    code = main(["audit", f"crack={root}", "--json", str(report_path), "--figure", str(figure), "--dedupe-to", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "cross-split duplicate pairs: 2 (copy 1, same_scene 1)" in printed and "unreadable" in printed
    report = json.loads(report_path.read_text())
    assert set(report) >= {"roots", "cross_split_duplicates"}
    assert set(report["cross_split_duplicates"][0]) >= {"a", "b", "distance", "kind"}
    assert figure.stat().st_size > 10_000
    assert tree_digest(root) == before  # source untouched
    copied = tree_digest(out / "walls")
    dropped = ("valid/images/leak.jpg", "valid/masks/leak.png", "valid/images/reshot.jpg", "valid/masks/reshot.png")
    expected = {k: v for k, v in before.items() if k not in dropped}
    assert copied == expected
    assert main(["audit", f"crack={root}", "--dedupe-to", str(out)]) == 1  # refuses a non-empty target
    assert "not empty" in capsys.readouterr().err
    assert files["leak"].exists()


def test_dedupe_filters_coco_json(tmp_path):
    source = SAMPLE / "drywall" / "train"
    root = tmp_path / "drywall"
    shutil.copytree(source, root / "train")
    (root / "valid").mkdir()
    coco = json.loads((source / "_annotations.coco.json").read_text())
    moved = {im["id"] for im in coco["images"] if im["file_name"] in COPIES_111136}
    for name in COPIES_111136:
        shutil.move(root / "train" / name, root / "valid" / name)
    train = {**coco, "images": [im for im in coco["images"] if im["id"] not in moved],
             "annotations": [a for a in coco["annotations"] if a["image_id"] not in moved]}
    valid = {**coco, "images": [im for im in coco["images"] if im["id"] in moved],
             "annotations": [a for a in coco["annotations"] if a["image_id"] in moved]}
    (root / "train" / "_annotations.coco.json").write_text(json.dumps(train))
    (root / "valid" / "_annotations.coco.json").write_text(json.dumps(valid))
    extra = {"a": str(root / "train" / "x.jpg"), "b": str(root / "valid" / COPIES_111136[0]), "distance": 0.5}
    report = A.audit({"taping": root})
    assert {Path(d["b"]).name for d in report["cross_split_duplicates"]} == set(COPIES_111136)
    out = A.dedupe(root, tmp_path / "clean", {"cross_split_duplicates": [extra]})
    kept = json.loads((out / "valid" / "_annotations.coco.json").read_text())
    assert [im["file_name"] for im in kept["images"]] == [COPIES_111136[1]]
    assert all(a["image_id"] != next(im["id"] for im in valid["images"] if im["file_name"] == COPIES_111136[0])
               for a in kept["annotations"])
    assert not (out / "valid" / COPIES_111136[0]).exists() and (out / "valid" / COPIES_111136[1]).exists()
    assert (root / "valid" / COPIES_111136[0]).exists()
    with pytest.raises(ValueError, match="outside the dataset root"):
        A.dedupe(root, root / "clean", report)


def test_plausible_rejects_reflection_and_extreme_scale():
    assert D._plausible(np.array([[0.9, 0.2, 5.0], [-0.2, 1.1, 3.0]]))
    assert not D._plausible(np.array([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    assert not D._plausible(np.array([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]]))


def test_keep_strong_drops_weak_second_matches():
    scored = [(0, 1, 100), (0, 2, 30), (3, 2, 80), (4, 5, 25)]
    assert D._keep_strong(scored, 0.5) == [(0, 1, 100), (3, 2, 80), (4, 5, 25)]


def test_pairing_problem_is_reported_not_fatal(tmp_path):
    root = tmp_path / "cracks"
    save(texture(1), root / "train" / "images" / "a.jpg")
    save(texture(2), root / "train" / "images" / "b.jpg")
    save(np.zeros((192, 192), np.uint8), root / "train" / "masks" / "a.png")
    split = A.audit([root])["roots"][0]["splits"]["train"]
    assert "image without mask: images/b.jpg" in split["error"]
    assert (split["images"], split["masks"]) == (2, 1)  # the mask that is there is still audited


def test_photo_groups_written_for_a_train_only_root(tmp_path):
    root = tmp_path / "cracks"
    wall = texture(7, size=640)
    photo = save(shoot(wall, FRONT, 1.0, noise_seed=1), root / "train" / "images" / "a.jpg")
    save(augmented(shoot(wall, FRONT, 1.0, noise_seed=1)), root / "train" / "images" / "b.jpg")
    save(shoot(texture(8, size=640), FRONT, 1.0, noise_seed=3), root / "train" / "images" / "c.jpg")
    for name in ("a", "b", "c"):
        save(np.zeros((320, 320), np.uint8), root / "train" / "masks" / f"{name}.png")
    path = A.write_photo_groups(root)
    assert path == root / "photo_groups.json"
    pairs = json.loads(path.read_text())["pairs"]
    assert [({p["a"], p["b"]}, p["kind"]) for p in pairs] == [({"train/images/a.jpg", "train/images/b.jpg"}, "copy")]
    assert read_photo_groups(root) == [{photo.resolve(), (root / "train/images/b.jpg").resolve()}]


def test_cli_names_the_image_without_a_mask_and_exits_1(tmp_path, capsys):
    root = tmp_path / "cracks"
    for i in range(3):
        save(texture(i), root / "train" / "images" / f"t{i}.jpg")
        if i:
            save(np.full((192, 192), 255, np.uint8), root / "train" / "masks" / f"t{i}.png")
    code = main(["audit", str(root), "--no-duplicates"])
    captured = capsys.readouterr()
    assert code == 1 and "1 split(s) cannot be read as a dataset" in captured.err
    assert "1 problem:" in captured.out and "image without mask: images/t0.jpg" in captured.out
    assert "images      3  masks      2" in captured.out  # the masks that are there are still audited
