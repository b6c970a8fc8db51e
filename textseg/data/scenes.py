"""Drawn walls with an ArUco marker and dark bands of known size, photographed head-on or at an angle: the ground
truth that millimetre measurement is checked against (tests, benchmarks/bench_marker.py, notebook 07).

The wall is drawn in millimetres, supersampled, and "photographed" by the homography that puts its four corners at
given photo pixels; the bands' masks in the photo are their exact polygons mapped the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np
from skimage.draw import polygon

from textseg.measure.plane import DEFAULT_DICTIONARY

WALL_GREY = 185
_SUPERSAMPLE = 3  # the wall is drawn at this many times the photo's finest resolution, then averaged down


@dataclass(frozen=True)
class Band:
    """A straight dark band on the wall (a crack as a ruler draws it): centre line from start to end (mm), width (mm),
    and how many grey levels darker than the wall it is."""

    start: tuple[float, float]
    end: tuple[float, float]
    width_mm: float
    darkness: float = 70.0

    @property
    def length_mm(self) -> float:
        return float(np.hypot(self.end[0] - self.start[0], self.end[1] - self.start[1]))

    def polygon(self) -> np.ndarray:
        """(4, 2) corners in wall millimetres."""
        (x0, y0), (x1, y1) = self.start, self.end
        nx, ny = -(y1 - y0) / self.length_mm * self.width_mm / 2, (x1 - x0) / self.length_mm * self.width_mm / 2
        return np.array([[x0 + nx, y0 + ny], [x1 + nx, y1 + ny], [x1 - nx, y1 - ny], [x0 - nx, y0 - ny]])


@dataclass(frozen=True)
class Wall:
    """A wall of `size_mm` (width, height) with an ArUco marker (side, top-left corner in mm) and bands."""

    size_mm: tuple[float, float] = (240.0, 180.0)
    bands: tuple[Band, ...] = (
        Band((70.0, 30.0), (220.0, 48.0), 2.0),
        Band((40.0, 90.0), (200.0, 160.0), 3.0),
        Band((225.0, 75.0), (228.0, 170.0), 5.0),
    )
    marker_side_mm: float = 40.0
    marker_at_mm: tuple[float, float] = (15.0, 15.0)
    marker_id: int = 7
    dictionary: str = DEFAULT_DICTIONARY


@dataclass
class Photo:
    """A photographed wall: the photo, each band's exact mask in it, and the true homography photo px -> wall mm."""

    image: np.ndarray  # (H, W, 3) uint8
    masks: list[np.ndarray]  # per band, bool (H, W)
    to_wall: np.ndarray  # (3, 3)
    wall: Wall
    frame: np.ndarray = field(repr=False)  # (4, 2) where the wall's corners are in the photo

    @property
    def mask(self) -> np.ndarray:
        """Every band's mask together."""
        return np.logical_or.reduce(self.masks)


def view(shape: tuple[int, int], tilt: float = 0.0, margin: float = 0.04) -> np.ndarray:
    """Where a wall's four corners (TL, TR, BR, BL) land in a photo of `shape` (H, W): head-on at tilt 0; with
    tilt t the right edge is (1 - t) as tall as the left, as when the camera turns to the wall's left side."""
    h, w = shape
    x0, x1, y0, y1 = margin * w, (1 - margin) * w, margin * h, (1 - margin) * h
    shrink = (y1 - y0) * tilt / 2
    return np.array([[x0, y0], [x1, y0 + shrink], [x1, y1 - shrink], [x0, y1]], dtype=np.float64)


def photograph(wall: Wall, shape: tuple[int, int] = (900, 1200), tilt: float = 0.0, noise: float = 2.0, seed: int = 0) -> Photo:
    """Photograph the wall into a photo of `shape` (H, W) with its corners at view(shape, tilt)."""
    w_mm, h_mm = wall.size_mm
    longest = np.max(np.linalg.norm(np.diff(np.vstack([view(shape, tilt), view(shape, tilt)[:1]]), axis=0), axis=1)
                     / np.array([w_mm, h_mm, w_mm, h_mm]))  # photo px per mm along the wall's longest-looking edge
    ppm = int(np.ceil(1.5 * longest))  # whole drawn pixels per mm: the marker's corners land exactly
    image, to_photo, frame = _shoot(_draw(wall, ppm), 1.0 / ppm, shape, tilt, noise, seed)
    masks = [_fill(_map(to_photo, band.polygon()), shape) for band in wall.bands]
    return Photo(image, masks, np.linalg.inv(to_photo), wall, frame)


def photograph_photo(
    rgb: np.ndarray, mm_per_px: float, marker_side_mm: float, marker_at_mm: tuple[float, float], tilt: float,
    shape: tuple[int, int] | None = None, marker_id: int = 7, dictionary: str = DEFAULT_DICTIONARY,
    masks: Sequence[np.ndarray] = (),
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """A head-on photo taken to show a wall at `mm_per_px`, with a printed marker stuck on it, photographed again at
    `tilt` (a photo of `shape`, default the photo's own): the tilted photo, its homography to wall mm, and the
    head-on photo's `masks` carried into it."""
    wall = np.array(rgb, dtype=np.uint8, copy=True)
    side = int(round(marker_side_mm / mm_per_px))
    tag = marker_image(side, marker_id, dictionary)
    quiet = (tag.shape[0] - side) // 2
    x0, y0 = (int(round(v / mm_per_px)) - quiet for v in marker_at_mm)
    if x0 < 0 or y0 < 0 or x0 + tag.shape[1] > wall.shape[1] or y0 + tag.shape[0] > wall.shape[0]:
        raise ValueError(f"a {marker_side_mm} mm marker at {marker_at_mm} mm does not fit on the photo")
    wall[y0 : y0 + tag.shape[0], x0 : x0 + tag.shape[1]] = tag[..., None]
    shape = shape or wall.shape[:2]
    image, to_photo, _ = _shoot(wall, mm_per_px, shape, tilt, noise=0.0, seed=0)
    head_on_to_mm = np.array([[mm_per_px, 0, 0.5 * mm_per_px], [0, mm_per_px, 0.5 * mm_per_px], [0, 0, 1]])
    carried = [cv2.warpPerspective(np.asarray(m, np.float32), to_photo @ head_on_to_mm, (shape[1], shape[0]),
                                   flags=cv2.INTER_LINEAR) > 0.5 for m in masks]
    return image, np.linalg.inv(to_photo), carried


def _shoot(
    drawn: np.ndarray, mm_per_drawn_px: float, shape: tuple[int, int], tilt: float, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photograph a drawn wall (grey or RGB; pixel j centred on (j + 0.5) * mm_per_drawn_px mm) into a photo of
    `shape` with the wall's corners at view(shape, tilt): the RGB photo, the homography wall mm -> photo px, and
    where the corners went. Warped to _SUPERSAMPLE x the photo and averaged down: edges anti-aliased as a lens
    would. Photo pixel centres are integers; big pixel k is centred on photo coordinate (k + 0.5) / s - 0.5."""
    frame = view(shape, tilt)
    h_mm, w_mm = (n * mm_per_drawn_px for n in drawn.shape[:2])
    corners_mm = np.array([[0, 0], [w_mm, 0], [w_mm, h_mm], [0, h_mm]], dtype=np.float32)
    to_photo = cv2.getPerspectiveTransform(corners_mm, frame.astype(np.float32)).astype(np.float64)
    s, m = _SUPERSAMPLE, mm_per_drawn_px
    drawn_to_mm = np.array([[m, 0, 0.5 * m], [0, m, 0.5 * m], [0, 0, 1]])
    photo_to_big = np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5], [0, 0, 1]])
    warped = cv2.warpPerspective(drawn, photo_to_big @ to_photo @ drawn_to_mm, (shape[1] * s, shape[0] * s),
                                 flags=cv2.INTER_LINEAR, borderValue=(90, 90, 90))
    photo = cv2.resize(warped, (shape[1], shape[0]), interpolation=cv2.INTER_AREA).astype(np.float32)
    if noise:
        photo += np.random.default_rng(seed).normal(0.0, noise, photo.shape).astype(np.float32)
    image = np.clip(np.round(photo), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image, to_photo, frame


def fattened(mask: np.ndarray, px: int) -> np.ndarray:
    """A mask grown by `px` pixels all round: the generous mask a model trained on wide polygons draws."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _draw(wall: Wall, px_per_mm: int) -> np.ndarray:
    """The wall as grey uint8 at px_per_mm, pixel (i, j) centred on ((j + 0.5) / px_per_mm, (i + 0.5) / px_per_mm);
    the marker's edges on whole pixels, so at its given millimetres when those are whole."""
    w_mm, h_mm = wall.size_mm
    image = np.full((int(np.ceil(h_mm * px_per_mm)), int(np.ceil(w_mm * px_per_mm))), WALL_GREY, np.uint8)
    for band in wall.bands:
        _fill_value(image, band.polygon() * px_per_mm, WALL_GREY - band.darkness)
    side = int(round(wall.marker_side_mm * px_per_mm))
    x0, y0 = (int(round(v * px_per_mm)) for v in wall.marker_at_mm)
    tag = marker_image(side, wall.marker_id, wall.dictionary)
    quiet = (tag.shape[0] - side) // 2
    image[y0 - quiet : y0 + side + quiet, x0 - quiet : x0 + side + quiet] = tag
    return image


def marker_image(side_px: int, marker_id: int = 7, dictionary: str = DEFAULT_DICTIONARY) -> np.ndarray:
    """A printed marker as grey uint8: the black square `side_px` across inside a white frame of one cell."""
    table = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary))
    cells = table.markerSize + 2
    tag = cv2.aruco.generateImageMarker(table, marker_id, cells * 50)  # crisp cells, then resized
    tag = cv2.resize(tag, (side_px, side_px), interpolation=cv2.INTER_AREA)
    quiet = max(2, side_px // cells)
    return np.pad(np.where(tag > 127, 250, 20).astype(np.uint8), quiet, constant_values=250)


def _map(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.hstack([points, np.ones((len(points), 1))]) @ homography.T
    return pts[:, :2] / pts[:, 2:]


def _fill(polygon_px: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centres lie inside a polygon given in pixel coordinates (centres at integers)."""
    canvas = np.zeros(shape, bool)
    rows, cols = polygon(polygon_px[:, 1], polygon_px[:, 0], shape)
    canvas[rows, cols] = True
    return canvas


def _fill_value(image: np.ndarray, polygon_px: np.ndarray, value: float) -> None:
    """Fill a polygon given in drawing pixels whose centres are at +0.5 (the drawing's convention), in place."""
    rows, cols = polygon(polygon_px[:, 1] - 0.5, polygon_px[:, 0] - 0.5, image.shape)
    image[rows, cols] = int(round(value))
