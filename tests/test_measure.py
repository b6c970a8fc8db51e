"""Defect measurement on masks of known geometry: length, width, count, and input checks."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from skimage.draw import polygon
from skimage.measure import regionprops

from textseg import CLASSES
from textseg.measure import skeleton
from textseg.measure import (
    WIDTH_CLASSES,
    Defect,
    check_binary,
    check_mm_per_px,
    measure_mask,
    parse_width_classes,
    summarize,
    width_class,
)
from textseg.measure.plane import Plane

# The acceptance rule: length within 5%, widths within max(1 px, 10%).
LENGTH_TOL = 0.05


def width_tol(width: float) -> float:
    """Allowed width error in pixels."""
    return max(1.0, 0.1 * width)


def draw_bar(mask: np.ndarray, start: tuple[float, float], end: tuple[float, float], width: float) -> None:
    """Draw a rectangle of the given width whose centre line runs from start to end (x, y), in place."""
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    nx, ny = -(y1 - y0) / length * width / 2, (x1 - x0) / length * width / 2
    rr, cc = polygon([y0 + ny, y1 + ny, y1 - ny, y0 - ny], [x0 + nx, x1 + nx, x1 - nx, x0 - nx], mask.shape)
    mask[rr, cc] = True


def band(length: float, width: float, angle_deg: float) -> np.ndarray:
    """A straight band centred in its canvas, at an angle counter-clockwise from horizontal in image view."""
    size = int(length + 4 * width + 20)
    mask = np.zeros((size, size), dtype=bool)
    # Off the pixel grid by 0.3 so no edge runs through pixel centres (which would add a row).
    c = size / 2 + 0.3
    dx, dy = math.cos(math.radians(angle_deg)) * length / 2, -math.sin(math.radians(angle_deg)) * length / 2
    draw_bar(mask, (c - dx, c - dy), (c + dx, c + dy), width)
    return mask


def star(arms: list[tuple[float, float]], width: float) -> np.ndarray:
    """Bars of (angle in degrees, length) that all start at one point: a Y, T or X."""
    mask = np.zeros((420, 420), dtype=bool)
    c = (210.3, 210.3)
    for angle, length in arms:
        a = math.radians(angle)
        draw_bar(mask, c, (c[0] + math.cos(a) * length, c[1] - math.sin(a) * length), width)
    return mask


def arc(radius: float, width: float, span_deg: float) -> np.ndarray:
    """Part of an annulus of mid radius `radius`, from 20 degrees through `span_deg`."""
    size = int(2 * radius + 2 * width + 20)
    c = size / 2 + 0.3
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(xx - c, yy - c)
    theta = np.degrees(np.arctan2(c - yy, xx - c))
    return (np.abs(r - radius) < width / 2) & ((theta - 20) % 360 < span_deg)


def only(defects: list[Defect]) -> Defect:
    """The single defect found."""
    assert len(defects) == 1, [d.to_dict() for d in defects]
    return defects[0]


def assert_size(d: Defect, length: float, width: float) -> None:
    """Length and both widths within the acceptance rule."""
    assert abs(d.length_px - length) <= LENGTH_TOL * length, (d.length_px, length)
    assert abs(d.mean_width_px - width) <= width_tol(width), (d.mean_width_px, width)
    assert abs(d.max_width_px - width) <= width_tol(width), (d.max_width_px, width)


@pytest.mark.parametrize("angle", [0, 22.5, 30, 45, 60, 90, 135])
@pytest.mark.parametrize("width", [2, 3, 5, 10, 20, 30])
def test_straight_band_length_width_and_pose(width: int, angle: float) -> None:
    length = 300 if width <= 10 else 160
    mask = band(length, width, angle)
    d = only(measure_mask(mask))
    assert_size(d, length, width)
    expected_angle = angle if angle <= 90 else angle - 180  # the axis, folded into (-90, 90]
    assert abs(d.orientation_deg - expected_angle) < 1.0
    rows, cols = np.nonzero(mask)
    assert d.bbox == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    assert d.area_px == rows.size
    assert d.centroid == pytest.approx((cols.mean(), rows.mean()))


@pytest.mark.parametrize("angle", [0, 45])
def test_one_pixel_line(angle: float) -> None:
    d = only(measure_mask(band(200, 1.01, angle)))
    assert abs(d.length_px - 200) <= LENGTH_TOL * 200
    assert d.mean_width_px == pytest.approx(1.0, abs=1.0)


@pytest.mark.parametrize("span", [90, 180, 270])
@pytest.mark.parametrize("width", [3, 10, 25])
def test_arc_length_is_mid_radius_times_angle(width: int, span: int) -> None:
    radius = 120
    d = only(measure_mask(arc(radius, width, span)))
    assert_size(d, radius * math.radians(span), width)


@pytest.mark.parametrize("width", [3, 5, 20])
@pytest.mark.parametrize(
    "arms",
    [
        [(90, 150), (210, 120), (330, 100)],  # Y
        [(80, 150), (200, 130), (300, 90)],  # uneven Y
        [(0, 150), (180, 150), (270, 120)],  # T
        [(10, 150), (190, 150), (280, 120)],  # tilted T
        [(30, 150), (210, 150), (120, 150), (300, 150)],  # X, square crossing
        [(20, 150), (200, 150), (80, 150), (260, 150)],  # X, crossing at 60 degrees
    ],
    ids=["Y", "Y-uneven", "T", "T-tilted", "X", "X-60"],
)
def test_branching_crack_length_is_sum_of_segments(arms: list[tuple[float, float]], width: int) -> None:
    d = only(measure_mask(star(arms, width)))
    assert_size(d, sum(length for _, length in arms), width)


def rough_band(length: float, width: float, angle_deg: float, seed: int, scale: int = 3) -> np.ndarray:
    """A band as a model draws it: a soft, noisy probability at 1/scale resolution, upsampled bilinearly and
    thresholded, so its edges are ragged."""
    size = int(length + 4 * width + 40) // scale
    yy, xx = (np.mgrid[:size, :size] * float(scale) + (scale - 1) / 2) - (size * scale / 2 + 0.3)
    a = math.radians(angle_deg)
    along, across = xx * math.cos(a) - yy * math.sin(a), xx * math.sin(a) + yy * math.cos(a)
    inside = np.minimum(width / 2 - np.abs(across), length / 2 - np.abs(along))  # signed distance to the edge
    prob = 1 / (1 + np.exp(-inside / 2)) + 0.05 * np.random.default_rng(seed).standard_normal(inside.shape)
    return cv2.resize(prob.astype(np.float32), (size * scale,) * 2, interpolation=cv2.INTER_LINEAR) > 0.5


def wedge(length: float, narrow: float, wide: float, angle_deg: float) -> np.ndarray:
    """A crack that widens steadily from `narrow` to `wide` pixels along its length."""
    mask = np.zeros((420, 420), dtype=bool)
    c, a = 210.3, math.radians(angle_deg)
    ux, uy = math.cos(a) * length / 2, -math.sin(a) * length / 2
    nx, ny = math.sin(a) / 2, math.cos(a) / 2  # half a unit normal
    xs = [c - ux + nx * narrow, c + ux + nx * wide, c + ux - nx * wide, c - ux - nx * narrow]
    ys = [c - uy + ny * narrow, c + uy + ny * wide, c + uy - ny * wide, c - uy - ny * narrow]
    rr, cc = polygon(ys, xs, mask.shape)
    mask[rr, cc] = True
    return mask


@pytest.mark.parametrize("angle", [10, 45, 120])
@pytest.mark.parametrize("width", [8, 24, 40])
def test_ragged_band_as_a_model_draws_it(width: int, angle: float) -> None:
    for seed in range(3):
        d = max(measure_mask(rough_band(200, width, angle, seed)), key=lambda d: d.area_px)
        assert abs(d.length_px - 200) <= LENGTH_TOL * 200, (seed, d.length_px)
        # The ragged edge itself wanders by about a pixel either way, so widths get that much more room.
        assert abs(d.max_width_px - width) <= width_tol(width) + 1.0, (seed, d.max_width_px)
        assert abs(d.mean_width_px - width) <= width_tol(width) + 1.0, (seed, d.mean_width_px)


@pytest.mark.parametrize(("width", "coarse"), [(8, False), (24, True)])
def test_wide_defects_are_thinned_at_half_resolution(width: int, coarse: bool) -> None:
    # The ragged-band and widening-crack tests below measure through both ways of thinning.
    crop = np.pad(rough_band(200, width, 30, seed=0), 2)
    dist = cv2.distanceTransform(crop.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    skel, was_coarse = skeleton._thin(crop, dist)
    assert was_coarse == coarse
    assert cv2.connectedComponents(skel.view(np.uint8), connectivity=8)[0] == 2  # background and one line
    assert skel.sum() < 1.2 * 200  # one pixel wide, not a band


@pytest.mark.parametrize("angle", [0, 30, 45])
@pytest.mark.parametrize(("narrow", "wide"), [(2, 30), (6, 48)])
def test_widening_crack_keeps_its_thin_end(narrow: int, wide: int, angle: float) -> None:
    d = only(measure_mask(wedge(300, narrow, wide, angle)))
    assert abs(d.length_px - 300) <= LENGTH_TOL * 300
    # Widths are read away from the ends, where a crack tapers into its tip: at the wide end, about a width in.
    width_at = lambda along: narrow + (wide - narrow) * along / 300  # noqa: E731
    assert abs(d.mean_width_px - width_at(150)) <= width_tol(width_at(150)) + 2.0  # the ends' skipped parts are uneven
    assert abs(d.max_width_px - width_at(300 - wide)) <= width_tol(width_at(300 - wide))


@pytest.mark.parametrize(("angle", "gap"), [(0, 1), (0, 2), (30, 2)])
def test_gap_closing_counts_a_broken_crack_once(angle: float, gap: int) -> None:
    mask = band(300, 4, angle)
    cut = np.zeros_like(mask)
    c = mask.shape[0] / 2 + 0.3
    a = math.radians(angle)
    half = (math.cos(a) * gap / 2, -math.sin(a) * gap / 2)
    draw_bar(cut, (c - half[0], c - half[1]), (c + half[0], c + half[1]), 20)
    mask &= ~cut
    joined = only(measure_mask(mask, gap_px=2))
    assert_size(joined, 300, 4)
    assert joined.area_px == mask.sum()
    apart = measure_mask(mask, gap_px=0)
    assert len(apart) == 2
    assert sum(d.area_px for d in apart) == mask.sum()
    assert sum(d.length_px for d in apart) == pytest.approx(300 - gap, rel=LENGTH_TOL)


def test_separate_defects_ids_by_area_bboxes_and_specks() -> None:
    mask = np.zeros((300, 400), dtype=bool)
    mask[20:24, 10:210] = True  # 800 px
    mask[100:300, 350:355] = True  # 1000 px, touches the bottom edge
    draw_bar(mask, (30.3, 200.3), (230.3, 120.3), 3)  # about 650 px, diagonal
    mask[5:7, 300:302] = True  # 4 px speck
    mask[250, 300] = True  # 1 px speck
    defects = measure_mask(mask, cls="taping")
    assert [d.id for d in defects] == [1, 2, 3]
    assert [d.cls for d in defects] == ["taping"] * 3
    areas = [d.area_px for d in defects]
    assert areas[:2] == [1000, 800] and 500 < areas[2] < 800
    assert defects[0].bbox == (350, 100, 355, 300)
    assert defects[1].bbox == (10, 20, 210, 24)
    rows, cols = np.nonzero(mask[100:260, 20:240])
    assert defects[2].bbox == (20 + cols.min(), 100 + rows.min(), 20 + cols.max() + 1, 100 + rows.max() + 1)
    assert len(measure_mask(mask, min_area_px=1)) == 5
    assert len(measure_mask(mask, min_area_px=801)) == 1


def test_sparse_and_dense_masks_measure_alike() -> None:
    # A defect measures the same alone in its crop and placed in a large, mostly empty mask.
    small = star([(0, 60), (120, 60), (240, 60)], 4)[145:275, 145:275]
    big = np.zeros((2000, 2000), dtype=bool)
    big[500:630, 700:830] = small
    a, b = only(measure_mask(small)), only(measure_mask(big))
    assert b.bbox == (a.bbox[0] + 700, a.bbox[1] + 500, a.bbox[2] + 700, a.bbox[3] + 500)
    assert (b.length_px, b.mean_width_px, b.area_px) == pytest.approx((a.length_px, a.mean_width_px, a.area_px))


def test_blobs_get_sensible_length_and_width() -> None:
    yy, xx = np.mgrid[:60, :60]
    disk_mask = (xx - 30.3) ** 2 + (yy - 30.3) ** 2 <= 10.5**2
    d = only(measure_mask(disk_mask))
    assert d.length_px == pytest.approx(21, rel=0.1)
    assert d.mean_width_px == pytest.approx(21, abs=width_tol(21))
    pixel = np.zeros((9, 9), dtype=np.uint8)
    pixel[4, 4] = 1
    p = only(measure_mask(pixel, min_area_px=1))
    assert (p.length_px, p.mean_width_px, p.max_width_px, p.area_px, p.bbox) == (1, 1, 1, 1, (4, 4, 5, 5))


def test_orientation_is_regionprops_converted() -> None:
    mask = np.zeros((200, 200), dtype=bool)  # two crossing bars: a shape no simpler test covers
    draw_bar(mask, (20.3, 150.3), (180.3, 60.3), 9)
    draw_bar(mask, (60.3, 40.3), (100.3, 170.3), 5)
    d = only(measure_mask(mask))
    props = regionprops(mask.astype(np.uint8))[0]
    # regionprops measures from the row axis (rows point down): ours is that minus 90, in (-90, 90].
    ours = math.degrees(props.orientation) - 90
    assert d.orientation_deg == pytest.approx(ours + 180 if ours <= -90 else ours, abs=1e-6)
    assert d.centroid == pytest.approx(props.centroid[::-1])


def test_empty_masks_have_no_defects() -> None:
    assert measure_mask(np.zeros((50, 60), dtype=bool)) == []
    assert measure_mask(np.zeros((50, 60), dtype=np.uint8), cls="taping") == []
    assert measure_mask(np.zeros((0, 0), dtype=bool)) == []


def test_check_binary_accepts_bool_0_1_and_0_255() -> None:
    ref = np.array([[0, 1], [1, 0]], dtype=bool)
    assert (check_binary(ref) == ref).all()
    assert (check_binary(ref.astype(np.int64)) == ref).all()
    assert (check_binary(ref.astype(np.uint8) * 255) == ref).all()
    assert check_binary(np.full((2, 2), 255, np.uint8)).all()


@pytest.mark.parametrize(
    ("values", "shown"),
    [(np.array([0, 128, 255], np.uint8), "128"), (np.array([0, 1, 255], np.int32), "1, 255"), (np.array([0.0, 1.0]), "1.0")],
)
def test_non_binary_mask_is_refused_naming_values(values: np.ndarray, shown: str) -> None:
    mask = np.resize(values, (4, 5))
    with pytest.raises(ValueError, match="predicted.png") as info:
        check_binary(mask, source="predicted.png")
    assert shown in str(info.value) and "mask > 127" in str(info.value)
    with pytest.raises(ValueError, match="threshold"):
        measure_mask(mask)


def test_bad_shapes_classes_and_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match=r"2-D.*\(4, 5, 3\)"):
        measure_mask(np.zeros((4, 5, 3), dtype=bool))
    with pytest.raises(ValueError, match="drywall"):
        measure_mask(np.zeros((4, 5), dtype=bool), cls="drywall")
    with pytest.raises(ValueError, match="gap_px"):
        measure_mask(np.zeros((4, 5), dtype=bool), gap_px=-1)
    with pytest.raises(ValueError, match="min_area_px"):
        measure_mask(np.zeros((4, 5), dtype=bool), min_area_px=1.5)
    assert set(CLASSES) == {"crack", "taping"}


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "abc", True])
def test_check_mm_per_px_refuses_non_positive_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match="--mm-per-px must be a positive number"):
        check_mm_per_px(bad)


def test_check_mm_per_px_passes_none_and_numbers() -> None:
    assert check_mm_per_px(None) is None
    assert check_mm_per_px(0.25) == 0.25
    assert check_mm_per_px("0.5") == 0.5


def test_to_dict_is_json_ready_and_scaled() -> None:
    crack = only(measure_mask(band(300, 5, 30)))
    plain = crack.to_dict()
    assert set(plain) == {
        "id", "class", "length_px", "mean_width_px", "max_width_px", "area_px", "bbox", "orientation_deg", "centroid"
    }
    assert plain["class"] == "crack" and plain["id"] == 1
    json.dumps(plain)
    scaled_crack = only(measure_mask(band(300, 5, 30), plane=Plane.uniform(0.1)))
    scaled = scaled_crack.to_dict()
    json.dumps(scaled)
    # One scale for the whole photo: the plane's sizes are the pixel sizes times the scale.
    assert scaled["length_mm"] == pytest.approx(crack.length_px * 0.1, abs=1e-3)
    assert scaled["mean_width_mm"] == pytest.approx(crack.mean_width_px * 0.1, abs=1e-3)
    assert scaled["max_width_mm"] == pytest.approx(crack.max_width_px * 0.1, abs=1e-3)
    assert scaled["area_mm2"] == pytest.approx(crack.area_px * 0.01, abs=1e-3)
    assert scaled["width_class"] == "fine" and scaled["width_from"] == "mask"  # about 0.5 mm
    assert only(measure_mask(band(300, 5, 30), plane=Plane.uniform(1.0))).to_dict()["width_class"] == "wide"
    tape = only(measure_mask(band(300, 5, 30), cls="taping", plane=Plane.uniform(0.1)))
    assert tape.to_dict()["width_class"] is None
    with pytest.raises(ValueError, match="--mm-per-px"):
        check_mm_per_px(0)


def test_width_class_bounds_are_inclusive_upper_bounds() -> None:
    assert [width_class(w) for w in (0.0, 0.1, 0.11, 1.0, 1.5, 2.0, 2.01, 50.0)] == [
        "hairline", "hairline", "fine", "fine", "medium", "medium", "wide", "wide"
    ]
    assert width_class(0.3, (("thin", 0.5), ("thick", math.inf))) == "thin"
    with pytest.raises(ValueError):
        width_class(float("nan"))


def test_parse_width_classes() -> None:
    assert parse_width_classes(["hairline=0.1", "fine=1", "medium=2", "wide"]) == WIDTH_CLASSES
    assert parse_width_classes("thin=0.5, thick") == (("thin", 0.5), ("thick", math.inf))
    assert parse_width_classes(["all"]) == (("all", math.inf),)


@pytest.mark.parametrize(
    "spec",
    [
        [],
        ["fine=1", "medium=2"],  # last class bounded
        ["fine", "wide"],  # bound missing before the last
        ["fine=1", "medium=0.5", "wide"],  # not increasing
        ["fine=x", "wide"],  # not a number
        ["fine=-1", "wide"],
        ["=1", "wide"],  # no name
        ["fine=1", "fine=2", "wide"],  # name twice
        ["fine=inf", "wide"],
    ],
)
def test_parse_width_classes_refuses_bad_specs(spec: list[str]) -> None:
    with pytest.raises(ValueError, match="width classes"):
        parse_width_classes(spec)


def test_summarize_counts_totals_and_width_classes() -> None:
    mask = np.zeros((200, 300), dtype=bool)
    mask[20:22, 10:210] = True  # 2 px wide
    mask[100:112, 10:260] = True  # 12 px wide
    defects = measure_mask(mask)
    plain = summarize(defects)
    assert plain["count"] == 2
    assert plain["total_length_px"] == pytest.approx(450, rel=LENGTH_TOL)
    assert plain["max_width_px"] == pytest.approx(12, abs=width_tol(12))
    assert plain["total_area_px"] == 400 + 3000
    assert "total_length_mm" not in plain
    scaled = summarize(measure_mask(mask, plane=Plane.uniform(0.1)))
    assert scaled["total_length_mm"] == pytest.approx(plain["total_length_px"] * 0.1, abs=1e-2)
    assert scaled["total_area_mm2"] == pytest.approx(3400 * 0.01)
    assert scaled["count_by_width_class"] == {"hairline": 0, "fine": 1, "medium": 1, "wide": 0}
    assert summarize([]) == {"count": 0, "total_length_px": 0.0, "max_width_px": 0.0, "total_area_px": 0}
