"""Millimetres from an ArUco marker: detection, the wall plane, and lengths and widths on drawn walls photographed
head-on and at steep angles, with masks that trace the bands and masks several times wider."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from textseg.cli import main
from textseg.data.scenes import Band, Wall, fattened, photograph
from textseg.measure import MarkerSpec, Plane, detect_markers, find_plane, measure_mask
from textseg.measure.stability import shifted, width_drift

TILTS = (0.0, 0.3, 0.55)  # the right edge 1, 0.7 and 0.45 times as tall as the left
FAT_PX = 7  # the generous mask: grown this much all round (a 2 mm band at 0.2 mm/px: 10 px -> 24 px)
LENGTH_TOL = 0.03


def width_tol(width_mm: float) -> float:
    return max(0.2, 0.1 * width_mm)


@pytest.fixture(scope="module")
def photos() -> dict[float, object]:
    return {tilt: photograph(Wall(), tilt=tilt) for tilt in TILTS}


def grey(photo) -> np.ndarray:
    return cv2.cvtColor(photo.image, cv2.COLOR_RGB2GRAY)


def measured(photo, fat: int = 0) -> list:
    """Each band of the photo measured alone, through the marker's plane, with the photo at hand."""
    plane = find_plane(grey(photo), MarkerSpec(photo.wall.marker_side_mm))
    out = []
    for mask in photo.masks:
        (defect,) = measure_mask(fattened(mask, fat) if fat else mask, plane=plane, photo=photo.image)
        out.append(defect)
    return out


@pytest.mark.parametrize("side, dictionary, message", [
    (0, "DICT_4X4_50", "positive number"), (-5, "DICT_4X4_50", "positive number"), (float("nan"), "DICT_4X4_50", "positive"),
    ("abc", "DICT_4X4_50", "positive"), (40, "DICT_9X9_1", "unknown marker dictionary 'DICT_9X9_1'"),
])
def test_marker_spec_refuses_bad_values(side: object, dictionary: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MarkerSpec(side, dictionary)


def test_marker_corners_to_sub_pixel(photos) -> None:
    for tilt, photo in photos.items():
        (marker,) = detect_markers(grey(photo))
        x0, y0 = photo.wall.marker_at_mm
        s = photo.wall.marker_side_mm
        truth = Plane(photo.to_wall, "mm").to_photo(np.array([[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s]]))
        assert marker.id == 7
        assert np.abs(marker.corners - truth).max() < 0.35, (tilt, marker.corners - truth)
    assert detect_markers(grey(photos[0.0]), "DICT_6X6_250") == []  # another dictionary sees no marker


def test_plane_geometry_matches_the_homography() -> None:
    h = np.array([[0.21, 0.03, 4.0], [-0.02, 0.19, 2.0], [2e-4, -1e-4, 1.0]])
    plane = Plane(h, "mm")
    xy = np.array([[100.0, 80.0], [900.0, 650.0]])
    eps = 1e-4
    numeric = np.stack([(plane.to_plane(xy + [eps, 0]) - plane.to_plane(xy - [eps, 0])) / (2 * eps),
                        (plane.to_plane(xy + [0, eps]) - plane.to_plane(xy - [0, eps])) / (2 * eps)], axis=2)
    assert np.allclose(plane.jacobian(xy), numeric, rtol=1e-6)
    assert np.allclose(plane.area_factor(xy), np.abs(np.linalg.det(numeric)), rtol=1e-6)
    assert np.allclose(plane.to_photo(plane.to_plane(xy)), xy)
    uniform = Plane.uniform(0.25)
    assert np.allclose(uniform.across(xy, np.array([[0.6, 0.8], [1.0, 0.0]])), 0.25)
    assert np.allclose(uniform.mm_per_px(xy), 0.25)


@pytest.mark.parametrize("tilt", TILTS)
@pytest.mark.parametrize("fat", [0, FAT_PX])
def test_millimetres_on_drawn_walls(photos, tilt: float, fat: int) -> None:
    photo = photos[tilt]
    plane = find_plane(grey(photo), MarkerSpec(40))
    low, high = plane.source["mm_per_px_range"]
    if tilt >= 0.5:
        assert high / low > 1.5  # the scale changes well across the photo: one mm_per_px would be wrong
    for band, d in zip(photo.wall.bands, measured(photo, fat)):
        assert d.visible_length == pytest.approx(band.length_mm, rel=LENGTH_TOL), (band, d)
        assert d.visible_width == pytest.approx(band.width_mm, abs=width_tol(band.width_mm)), (band, d)
        assert d.visible_max_width == pytest.approx(band.width_mm, abs=width_tol(band.width_mm)), (band, d)
        if fat:
            assert d.mean_width_mm > band.width_mm + 1.0  # the mask is far wider; the photo's width is not
        else:
            assert d.length_mm == pytest.approx(band.length_mm, rel=LENGTH_TOL), (band, d)
            assert d.mean_width_mm == pytest.approx(band.width_mm, abs=width_tol(band.width_mm)), (band, d)
            assert d.max_width_mm == pytest.approx(band.width_mm, abs=width_tol(band.width_mm)), (band, d)
        assert d.to_dict()["width_from"] == "visible"


def test_head_on_and_steep_agree(photos) -> None:
    for fat in (0, FAT_PX):
        flat, steep = measured(photos[TILTS[0]], fat), measured(photos[TILTS[-1]], fat)
        for a, b in zip(flat, steep):
            assert b.visible_length == pytest.approx(a.visible_length, rel=0.03)
            assert b.visible_width == pytest.approx(a.visible_width, rel=0.03)


def test_without_a_marker_the_photo_is_measured_in_pixels() -> None:
    wall = Wall(marker_side_mm=40, marker_at_mm=(15, 15), bands=(Band((70, 60), (220, 80), 3.0),))
    photo = photograph(wall, tilt=0.3)
    image = photo.image.copy()
    image[60:330, 100:420] = 185  # the marker covered
    plane = find_plane(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), MarkerSpec(40))
    assert plane.unit == "px" and plane.source == {"source": None, "note": "no DICT_4X4_50 marker found"}
    (d,) = measure_mask(photo.masks[0], plane=plane, photo=image)
    assert d.length_mm is None and d.visible_width is not None and "visible_width_px" in d.to_dict()
    assert "width_class" not in d.to_dict()
    fallback = find_plane(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), MarkerSpec(40), mm_per_px=0.2)
    assert fallback.unit == "mm" and fallback.source["source"] == "mm_per_px" and "no DICT_4X4_50" in fallback.source["note"]


def test_a_flat_photo_shows_no_valley() -> None:
    mask = np.zeros((80, 120), bool)
    mask[38:43, 10:110] = True
    (d,) = measure_mask(mask, photo=np.full((80, 120), 180, np.uint8))
    assert d.photo_read and d.visible_width is None and d.visible_length is None
    with pytest.raises(ValueError, match="does not match mask size"):
        measure_mask(mask, photo=np.zeros((80, 121), np.uint8))


def test_width_drift_of_a_photo_and_of_its_longest_defect() -> None:
    wall = Wall(bands=(Band((70.0, 40.0), (220.0, 60.0), 3.0), Band((60.0, 140.0), (72.0, 140.0), 8.0)))
    photo = photograph(wall, tilt=0.3)
    plane = find_plane(grey(photo), MarkerSpec(wall.marker_side_mm))
    mask = fattened(photo.mask, 4)
    assert shifted(mask, 2).sum() > mask.sum() > shifted(mask, -2).sum()
    longest = width_drift(mask, photo.image, (-2, 2, 4), plane=plane, longest=True)
    both = width_drift(mask, photo.image, (-2, 2, 4), plane=plane)
    assert set(longest) == {0, -2, 2, 4}
    for px, (visible, mask_width) in longest.items():
        assert visible == pytest.approx(3.0, abs=width_tol(3.0)), px
        assert mask_width > visible  # the grown mask is wider than the band it covers
    # The short wide band counts in the photo's mean (by its length), not in the longest defect's.
    assert 3.0 + width_tol(3.0) < both[0][0] < 8.0


def _scene_files(tmp_path: Path, tilt: float = 0.55) -> tuple[Path, Path, object]:
    photo = photograph(Wall(), tilt=tilt)
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    Image.fromarray(photo.image).save(photos / "wall.png")
    Image.fromarray(fattened(photo.mask, FAT_PX).astype(np.uint8) * 255).save(masks / "wall_mask.png")
    return photos, masks, photo


def test_measure_cli_with_photos_and_marker(tmp_path: Path, capsys) -> None:
    photos, masks, photo = _scene_files(tmp_path)
    out = tmp_path / "out"
    code = main(["measure", str(masks), "--class", "crack", "--photos", str(photos), "--marker", "40", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0 and "marker 7" in stdout
    report = json.loads((out / "report.json").read_text())
    image = report["images"][0]
    assert image["scale"]["source"] == "marker" and image["scale"]["id"] == 7 and report["marker"]["side_mm"] == 40
    found = sorted(image["defects"], key=lambda d: d["visible_length_mm"])
    truth = sorted(photo.wall.bands, key=lambda b: b.length_mm)
    for d, band in zip(found, truth):
        assert d["visible_length_mm"] == pytest.approx(band.length_mm, rel=LENGTH_TOL)
        assert d["visible_max_width_mm"] == pytest.approx(band.width_mm, abs=width_tol(band.width_mm))
        assert d["width_from"] == "visible" and d["width_class"] == "wide"
    shown = np.asarray(Image.open(out / "wall_mask_inspect.png"))
    assert (shown == (0, 255, 255)).all(-1).sum() > 100  # the marker outlined
    assert report["summary"]["images_in_mm"] == 1 and report["summary"]["images_without_scale"] == []


def test_measure_cli_names_photos_without_a_marker(tmp_path: Path, capsys) -> None:
    photos, masks, _ = _scene_files(tmp_path)
    blank = np.full((90, 120, 3), 185, np.uint8)
    Image.fromarray(blank).save(photos / "blank.jpg")
    Image.fromarray(np.zeros((90, 120), np.uint8)).save(masks / "blank_mask.png")
    out = tmp_path / "out"
    code = main(["measure", str(masks), "--class", "crack", "--photos", str(photos), "--marker", "40", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0 and "blank.jpg: 0 defects" not in stdout and "blank_mask.png: 0 defects" in stdout
    assert "no DICT_4X4_50 marker found, measured in px" in stdout and "1 without a scale" in stdout
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["images_without_scale"] == ["blank_mask.png"]


@pytest.mark.parametrize("extra, message", [
    (["--marker", "0"], "--marker must be the marker's side in millimetres"),
    (["--marker", "40", "--marker-dict", "DICT_NOPE"], "unknown marker dictionary 'DICT_NOPE'"),
    (["--marker", "40", "--photos", "MISSING"], "not a directory"),
    (["--marker", "40"], "--marker is read from the photos: give them with --photos DIR"),
    (["--photos", "EMPTY"], "no photo in"),
])
def test_measure_cli_marker_errors_write_nothing(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    _, masks, _ = _scene_files(tmp_path)
    (tmp_path / "EMPTY").mkdir()
    extra = [str(tmp_path / e) if e in ("MISSING", "EMPTY") else e for e in extra]
    code = main(["measure", str(masks), "--class", "crack", "--out", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_measure_cli_photo_of_another_size_is_named(tmp_path: Path, capsys) -> None:
    photos, masks, _ = _scene_files(tmp_path)
    Image.fromarray(np.full((50, 60, 3), 185, np.uint8)).save(photos / "small.png")
    Image.fromarray(np.zeros((40, 60), np.uint8)).save(masks / "small_mask.png")
    out = tmp_path / "out"
    code = main(["measure", str(masks), "--class", "crack", "--photos", str(photos), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "small.png: photo is 60x50 px but its mask is 60x40" in err
    assert (out / "wall_mask_inspect.png").exists() and not (out / "small_mask_inspect.png").exists()


def test_inspect_measures_through_the_marker_and_hides_it_from_the_model(tmp_path: Path, monkeypatch, capsys) -> None:
    from conftest import make_checkpoint
    from textseg.predictor import Segmenter, Tiling
    from textseg.inspection import MeasureSettings, inspect_photos

    photo = photograph(Wall(), tilt=0.3)
    path = tmp_path / "wall.png"
    Image.fromarray(photo.image).save(path)
    seg = Segmenter.from_checkpoint(make_checkpoint(tmp_path / "best.pt"), device="cpu")
    shown: list[np.ndarray] = []

    def traced(image, *args, **kwargs):  # the model draws the bands exactly
        shown.append(np.asarray(image))
        return photo.mask.astype(np.float32)

    monkeypatch.setattr(seg, "tiled_probability", traced)
    report = inspect_photos(seg, [path], "segment crack", tmp_path / "out", tiling=Tiling(256),
                            settings=MeasureSettings(marker=MarkerSpec(40)))
    assert detect_markers(grey_of(shown[0])) == []  # the model was shown the photo with its marker painted over
    image = report.to_json()["images"][0]
    assert image["scale"]["source"] == "marker" and len(image["defects"]) == 3
    for d, band in zip(sorted(image["defects"], key=lambda d: d["visible_length_mm"]),
                       sorted(photo.wall.bands, key=lambda b: b.length_mm)):
        assert d["visible_length_mm"] == pytest.approx(band.length_mm, rel=LENGTH_TOL)
        assert d["length_mm"] == pytest.approx(band.length_mm, rel=LENGTH_TOL)


def grey_of(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def test_measure_takes_the_masks_of_a_predict_folder_and_finds_their_photos(tmp_path: Path, capsys) -> None:
    photos, masks, _ = _scene_files(tmp_path)
    Image.fromarray(np.zeros((900, 1200, 3), np.uint8)).save(masks / "wall_overlay.jpg")  # written beside by predict
    out = tmp_path / "out"
    code = main(["measure", str(masks), "--class", "crack", "--photos", str(photos), "--marker", "40", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert [Path(i["image"]).name for i in report["images"]] == ["wall_mask.png"] and report["failed"] == []
