"""YOLO and COCO parsing, rasterising and `textseg extract-masks`, on the vendored real files and bad inputs."""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from textseg import cli
from textseg.data import labels
from textseg.data.images import load_mask
from textseg.data.labels import (
    LabelError,
    RasterStats,
    YoloShape,
    coco_mask,
    extract_masks,
    parse_yolo_file,
    rasterize_yolo,
    read_coco,
    write_yolo_file,
    yolo_mask,
)

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
CRACK_TEST = SAMPLE / "cracks" / "test"
DRYWALL = SAMPLE / "drywall" / "train"


def copy_sample(tmp_path: Path, name: str) -> Path:
    """A writable copy of one vendored dataset root."""
    dst = tmp_path / name
    shutil.copytree(SAMPLE / name, dst)
    return dst


def write_image(path: Path, size=(40, 30), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, 128).save(path)
    return path


def yolo_split(tmp_path: Path, lines: str, size=(40, 30), yaml_text: str | None = None) -> Path:
    """A YOLO root with one train image `a.png` and its label text; returns the label path."""
    root = tmp_path / "yolo"
    write_image(root / "train" / "images" / "a.png", size)
    label = root / "train" / "labels" / "a.txt"
    label.parent.mkdir(parents=True, exist_ok=True)
    label.write_text(lines)
    if yaml_text is not None:
        (root / "data.yaml").write_text(yaml_text)
    return label


def shoelace(flat: list[float]) -> float:
    xy = np.asarray(flat).reshape(-1, 2)
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


# ----------------------------------------------------------------------------- real files

def test_crack_coco_polygons_rasterise_to_their_area_inside_their_box():
    export = read_coco(CRACK_TEST / "_annotations.coco.json")
    assert export.classes == {0: "crack", 1: "crack"}  # umbrella "crack"/"none" and "NewCracks - v2 ..."/"crack"
    assert len(export.images) == 4 and export.used_classes() == {"crack"}
    for name, rec in export.images.items():
        mask = coco_mask(export, name)
        assert mask.shape == (640, 640) and mask.dtype == bool
        anns = export.annotations[rec["id"]]
        polys = [p for a in anns for p in a["segmentation"]]
        areas = [shoelace(p) for p in polys]
        assert max(areas) * 0.98 <= mask.sum() <= sum(areas) * 1.02
        rows, cols = np.nonzero(mask)
        x0 = min(a["bbox"][0] for a in anns)
        x1 = max(a["bbox"][0] + a["bbox"][2] for a in anns)
        assert x0 - 1 <= cols.min() and cols.max() <= x1 + 1


def test_single_crack_polygon_area_matches_shoelace():
    export = read_coco(CRACK_TEST / "_annotations.coco.json")
    for anns in export.annotations.values():
        for ann in anns:
            mask = labels._draw(labels._coco_pixels(export.path, ann, 640, 640, RasterStats()), 640, 640)
            assert mask.sum() == pytest.approx(shoelace(ann["segmentation"][0]), rel=0.01)


def test_drywall_boxes_become_filled_rectangles_and_negative_is_empty():
    export = read_coco(DRYWALL / "_annotations.coco.json")
    assert export.classes == {0: "taping", 1: "taping"}  # "Drywall-Join"/"none", "drywall-join"/"Drywall-Join"
    by_id = {rec["id"]: name for name, rec in export.images.items()}
    expected = np.zeros((640, 640), bool)
    for ann in export.annotations[1]:
        x, y, w, h = ann["bbox"]
        expected[y:y + h, x:x + w] = True
    assert np.array_equal(coco_mask(export, by_id[1]), expected)
    assert not coco_mask(export, by_id[380]).any()  # the export's true negative
    tiny = coco_mask(export, by_id[249])  # a big box and two 0.5 px boxes at (0, 1) and (1, 0)
    assert tiny[1, 0] and tiny[0, 1] and not tiny[0, 0]


def test_yolo_polygons_match_the_coco_polygons_they_came_from():
    export = read_coco(CRACK_TEST / "_annotations.coco.json")
    for label in sorted((SAMPLE / "cracks-yolo" / "train" / "labels").glob("*.txt")):
        shapes = parse_yolo_file(label)
        assert shapes and all(s.kind == "polygon" and s.cls_id == 0 for s in shapes)
        got = yolo_mask(label, 640, 640)
        want = coco_mask(export, label.stem + ".jpg")
        assert (got & want).sum() / (got | want).sum() > 0.99


def test_extract_masks_on_real_exports_and_no_overwrite(tmp_path):
    cracks, drywall, yolo = (copy_sample(tmp_path, n) for n in ("cracks", "drywall", "cracks-yolo"))
    report = extract_masks(drywall)
    (split,) = report.splits
    assert (split.layout, split.classes, split.written, split.empty, split.skipped) == ("coco", ["taping"], 13, 1, 0)
    masks = sorted((drywall / "train" / "masks").glob("*.png"))
    assert [m.stem for m in masks] == sorted(p.stem for p in (drywall / "train").glob("*.jpg"))
    img = Image.open(masks[0])
    assert img.mode == "L" and img.size == (640, 640) and set(np.unique(np.asarray(img))) <= {0, 255}
    mtimes = [m.stat().st_mtime_ns for m in masks]
    again = extract_masks(drywall)
    assert (again.total("written"), again.total("skipped")) == (0, 13)
    assert [m.stat().st_mtime_ns for m in masks] == mtimes
    assert extract_masks(drywall, overwrite=True).total("written") == 13

    report = extract_masks([cracks, yolo])
    layouts = {(s.split_dir.parent.name, s.split_dir.name): s.layout for s in report.splits}
    assert layouts == {("cracks", "train"): "masks", ("cracks", "test"): "coco", ("cracks-yolo", "train"): "yolo"}
    assert report.total("written") == 6
    assert np.array_equal(load_mask(cracks / "test" / "masks" / "2056_jpg.rf.f9c157d1ea5533233b309ea330ae2cce.png"),
                          coco_mask(read_coco(cracks / "test" / "_annotations.coco.json"), "2056_jpg.rf.f9c157d1ea5533233b309ea330ae2cce.jpg"))


# ----------------------------------------------------------------------------- YOLO parsing and rasterising

@pytest.mark.parametrize("line, message", [
    ("0 0.1 0.2 0.3 0.4 0.5", "odd number of coordinates (5)"),
    ("0 0.1 0.2 abc 0.4", "coordinate 'abc' is not a number"),
    ("0 0.1 0.2 nan 0.4", "not finite"),
    ("x 0.1 0.2 0.3 0.4", "class id 'x' is not an integer"),
    ("0 0.1 0.2", "2 coordinates"),
    ("0 0.5 0.5 -0.1 0.2", "negative width or height"),
])
def test_parse_yolo_bad_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.txt"
    path.write_text(f"0 0.5 0.5 0.2 0.2\n\n{line}\n")
    with pytest.raises(LabelError) as err:
        parse_yolo_file(path)
    assert f"{path}:3:" in str(err.value) and message in str(err.value)


def test_parse_and_write_yolo_round_trip(tmp_path):
    shapes = [YoloShape(0, "box", np.array([0.5, 0.5, 0.25, 0.5])),
              YoloShape(1, "polygon", np.array([[0.1, 0.1], [0.9, 0.1], [0.5, 0.8]]))]
    path = tmp_path / "labels" / "a.txt"
    write_yolo_file(path, shapes)
    back = parse_yolo_file(path)
    assert [(s.cls_id, s.kind, s.line) for s in back] == [(0, "box", 1), (1, "polygon", 2)]
    assert np.allclose(back[1].coords, shapes[1].coords)
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_rasterize_yolo_box_pixels_clip_and_zero_width(caplog):
    stats = RasterStats()
    box = YoloShape(0, "box", np.array([0.5, 0.5, 0.5, 0.5]))  # 20x10 box in a 40x20 image
    mask = rasterize_yolo([box], 40, 20, stats)
    assert mask.sum() == 20 * 10 and mask[5:15, 10:30].all()
    with caplog.at_level(logging.WARNING, logger="textseg.data.labels"):
        outside = YoloShape(0, "polygon", np.array([[-0.5, 0.0], [1.5, 0.0], [1.5, 1.0], [-0.5, 1.0]]))
        assert rasterize_yolo([outside], 40, 20, stats).all()
    assert "clipped" in caplog.text and stats.clipped == 1
    flat = YoloShape(0, "box", np.array([0.5, 0.5, 0.0, 0.5]))
    assert not rasterize_yolo([flat], 40, 20, stats).any()
    assert stats.zero_width == 1 and stats.shapes == 3


def test_unknown_yolo_class_without_yaml_and_class_map(tmp_path):
    label = yolo_split(tmp_path, "0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.4 0.4\n")
    with pytest.raises(LabelError) as err:
        extract_masks(tmp_path / "yolo")
    msg = str(err.value)
    assert f"{label}:2: unknown class 1" in msg and "--class-map 1=crack" in msg
    assert not (tmp_path / "yolo" / "train" / "masks").exists()
    report = extract_masks(tmp_path / "yolo", class_map={"1": "crack"})
    assert report.total("written") == 1 and report.splits[0].classes == ["crack"]
    mask = load_mask(tmp_path / "yolo" / "train" / "masks" / "a.png")
    assert mask.shape == (30, 40) and mask.sum() == 16 * 12


def test_yolo_classes_from_data_yaml(tmp_path):
    label = yolo_split(tmp_path, "0 0.5 0.5 0.5 0.5\n1 0.2 0.2 0.1 0.1\n", yaml_text="nc: 2\nnames: ['drywall-join', 'mold']\n")
    with pytest.raises(LabelError, match=r"a.txt:2: class 1 \('mold' in data.yaml\) maps to no textseg class; run textseg extract-masks with --class-map 'mold=crack'"):
        extract_masks(tmp_path / "yolo")
    with pytest.raises(LabelError, match="both classes"):
        extract_masks(tmp_path / "yolo", class_map={"mold": "crack"})
    report = extract_masks(tmp_path / "yolo", class_map={"mold": "ignore"})
    assert report.splits[0].classes == ["taping"]
    assert load_mask(label.parent.parent / "masks" / "a.png").sum() == 20 * 15  # the mold box is dropped


def test_class_map_by_id_overrides_defaults_and_yaml_dict_names(tmp_path):
    label = yolo_split(tmp_path, "0 0.5 0.5 0.5 0.5\n")
    report = extract_masks(tmp_path / "yolo", class_map={"0": "ignore"})
    assert report.splits[0].empty == 1 and not load_mask(label.parent.parent / "masks" / "a.png").any()
    (tmp_path / "yolo" / "data.yaml").write_text("names:\n  0: wall-crack\n")
    report = extract_masks(tmp_path / "yolo", overwrite=True)
    assert report.splits[0].classes == ["crack"] and report.splits[0].empty == 0


def test_empty_label_gives_empty_mask_and_missing_label_is_reported(tmp_path):
    yolo_split(tmp_path, "")
    write_image(tmp_path / "yolo" / "train" / "images" / "b.png")
    (tmp_path / "yolo" / "train" / "labels" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    report = extract_masks(tmp_path / "yolo" / "train")
    split = report.splits[0]
    assert (split.written, split.empty) == (1, 1)
    assert [p.name for p in report.images_without_labels] == ["b.png"]
    assert [p.name for p in split.labels_without_images] == ["orphan.txt"]
    assert "1 images without labels, no mask written (b.png)" in report.summary()
    masks = tmp_path / "yolo" / "train" / "masks"
    assert sorted(p.name for p in masks.iterdir()) == ["a.png"] and not load_mask(masks / "a.png").any()


def test_zero_width_and_clipped_counts_in_report(tmp_path, caplog):
    yolo_split(tmp_path, "0 0.5 0.5 0 0.3\n0 0.9 0.5 0.4 0.2\n")
    with caplog.at_level(logging.WARNING, logger="textseg.data.labels"):
        split = extract_masks(tmp_path / "yolo").splits[0]
    assert (split.zero_width, split.clipped) == (1, 1)
    assert "a.txt:2: box" in caplog.text and "clipped" in caplog.text
    mask = load_mask(tmp_path / "yolo" / "train" / "masks" / "a.png")
    assert mask[:, 28:].all(axis=1)[12:18].all() and not mask[:, :28].any()


# ----------------------------------------------------------------------------- COCO bad input

def coco_split(tmp_path: Path, annotations: list, categories=None, images=None) -> Path:
    split = tmp_path / "coco" / "train"
    write_image(split / "a.jpg", (40, 30))
    data = {
        "images": images or [{"id": 0, "file_name": "a.jpg", "width": 40, "height": 30}],
        "annotations": annotations,
        "categories": categories or [{"id": 0, "name": "crack", "supercategory": "none"},
                                     {"id": 1, "name": "NewCracks", "supercategory": "crack"}],
    }
    (split / "_annotations.coco.json").write_text(json.dumps(data))
    return split


def ann(aid=1, image_id=0, category_id=1, segmentation=None, bbox=(0, 0, 4, 4), iscrowd=0):
    return {"id": aid, "image_id": image_id, "category_id": category_id, "bbox": list(bbox),
            "segmentation": [] if segmentation is None else segmentation, "iscrowd": iscrowd}


@pytest.mark.parametrize("annotation, message", [
    (ann(7, image_id=99), "annotation 7 points at image id 99, which is not in 'images'"),
    (ann(8, category_id=5), "annotation 8 has category id 5"),
    (ann(9, segmentation=[[1, 1, 5, 1, 5]]), "annotation 9: polygon with an odd number of coordinates (5)"),
    (ann(10, segmentation=[[1, 1, "x", 1, 5, 5]]), "annotation 10: coordinate 'x' is not a number"),
    (ann(11, segmentation=[[1, 1, 5, 1]]), "annotation 11: polygon with 4 coordinates"),
    (ann(12, bbox=(0, 0, -3, 4)), "annotation 12: bbox [0.0, 0.0, -3.0, 4.0] has negative width"),
])
def test_coco_bad_annotations_name_the_annotation(tmp_path, annotation, message):
    split = coco_split(tmp_path, [ann(1), annotation])
    with pytest.raises(LabelError) as err:
        extract_masks(split)
    assert message in str(err.value) and "_annotations.coco.json" in str(err.value)
    assert not (split / "masks").exists()


def test_coco_unmapped_category_suggests_class_map(tmp_path):
    cats = [{"id": 0, "name": "defects", "supercategory": "none"}, {"id": 1, "name": "mold", "supercategory": "defects"}]
    split = coco_split(tmp_path, [ann(3)], categories=cats)
    with pytest.raises(LabelError, match=r"annotation 3: category 1 \('mold'.*--class-map 'mold=crack'"):
        read_coco(split / "_annotations.coco.json")
    assert read_coco(split / "_annotations.coco.json", {"mold": "crack"}).used_classes() == {"crack"}
    assert read_coco(split / "_annotations.coco.json", {"1": "taping"}).used_classes() == {"taping"}


def test_coco_missing_image_file_and_size_mismatch(tmp_path):
    images = [{"id": 0, "file_name": "a.jpg", "width": 40, "height": 30},
              {"id": 4, "file_name": "gone.jpg", "width": 40, "height": 30}]
    split = coco_split(tmp_path, [ann(1)], images=images)
    with pytest.raises(LabelError, match="image id 4 file 'gone.jpg' not found"):
        extract_masks(split)
    split = coco_split(tmp_path, [ann(1)], images=[{"id": 0, "file_name": "a.jpg", "width": 64, "height": 30}])
    with pytest.raises(LabelError, match="image id 0 is 64x30 in the json but .*a.jpg is 40x30"):
        extract_masks(split)


def test_coco_invalid_json_names_line(tmp_path):
    path = tmp_path / "_annotations.coco.json"
    path.write_text('{"images": [],\n "annotations": [,]}')
    with pytest.raises(LabelError, match=r"_annotations.coco.json:2: invalid JSON"):
        read_coco(path)


def test_coco_rle_iscrowd_masks(tmp_path):
    want = np.zeros((30, 40), np.uint8)
    want[5:12, 8:30] = 1
    compressed = mask_utils.encode(np.asfortranarray(want))
    compressed["counts"] = compressed["counts"].decode()
    counts, run, prev = [], 0, 0  # uncompressed RLE: column-major run lengths starting with zeros
    for v in want.flatten(order="F"):
        if v != prev:
            counts.append(run)
            run, prev = 0, v
        run += 1
    counts.append(run)
    uncompressed = {"size": [30, 40], "counts": counts}
    for seg in (compressed, uncompressed):
        split = coco_split(tmp_path, [ann(1, segmentation=seg, iscrowd=1)])
        export = read_coco(split / "_annotations.coco.json")
        assert np.array_equal(coco_mask(export, "a.jpg"), want.astype(bool))
    split = coco_split(tmp_path, [ann(2, segmentation={"size": [10, 10], "counts": [100]}, iscrowd=1)])
    with pytest.raises(LabelError, match=r"annotation 2: RLE size \[10, 10\] differs"):
        extract_masks(split)


def test_coco_image_not_in_json_is_reported_without_mask(tmp_path):
    split = coco_split(tmp_path, [ann(1, bbox=(2, 3, 10, 5))])
    write_image(split / "extra.jpg")
    report = extract_masks(split)
    assert [p.name for p in report.images_without_labels] == ["extra.jpg"]
    assert sorted(p.name for p in (split / "masks").iterdir()) == ["a.png"]
    assert load_mask(split / "masks" / "a.png").sum() == 50


# ----------------------------------------------------------------------------- atomicity and CLI

def test_failing_run_leaves_no_partial_files(tmp_path, monkeypatch):
    drywall = copy_sample(tmp_path, "drywall")
    yolo = yolo_split(tmp_path, "0 0.5 0.5 0.2\n").parent.parent.parent  # second root is bad
    with pytest.raises(LabelError, match="odd number"):
        extract_masks([drywall, yolo])
    assert sorted(p.name for p in (drywall / "train").iterdir() if not p.is_file()) == []

    calls = []

    def failing_save(mask, path):
        calls.append(path)
        if len(calls) == 5:
            raise OSError("disk full")
        labels_save(mask, path)

    labels_save = labels.save_mask
    monkeypatch.setattr(labels, "save_mask", failing_save)
    with pytest.raises(OSError, match="disk full"):
        extract_masks(drywall)
    assert len(calls) == 5
    assert sorted(p.name for p in (drywall / "train").iterdir() if not p.is_file()) == []  # no masks/, no staging


def test_cli_extract_masks(tmp_path, capsys):
    drywall = copy_sample(tmp_path, "drywall")
    assert cli.main(["extract-masks", str(drywall), "--class-map", "drywall-join=taping"]) == 0
    out = capsys.readouterr().out
    assert "coco, class taping: 13 written, 0 kept, 1 empty" in out
    assert cli.main(["extract-masks", str(drywall), "--class-map", "drywall-join"]) == 1
    assert "expected NAME=CLASS" in capsys.readouterr().err
    assert cli.main(["extract-masks", str(tmp_path / "nope")]) == 1
    assert "no such dataset folder" in capsys.readouterr().err
