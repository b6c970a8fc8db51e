"""The wall plane a photo shows: a homography from photo pixels to millimetres, found from an ArUco marker of known
side in the photo, from a scale the user gives, or none (sizes stay in photo pixels).

A photo taken at an angle has a different scale at every point; measured through the homography, one crack gives
the same millimetres head-on and tilted. The marker's four corners fix the homography (eight numbers from eight
coordinates), so the plane is as good as those corners: they are refined to sub-pixel on the full photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

DEFAULT_DICTIONARY = "DICT_4X4_50"
DETECT_SIDE = 1600  # longer side (px) markers are searched at; the corners are then refined on the full photo
_MIN_MARKER_PX = 12  # a marker smaller than this (side, photo px) gives its corners to a pixel or two: refused


def dictionary_names() -> list[str]:
    """The marker dictionaries OpenCV knows, e.g. DICT_4X4_50, DICT_6X6_250, DICT_APRILTAG_36h11."""
    return sorted(name for name in dir(cv2.aruco) if name.startswith("DICT_") and name.upper() == name)


def positive_number(value: Any, message: str) -> float:
    """`value` as a float; ValueError(message) for anything but a positive finite number (a bool included)."""
    if isinstance(value, bool):
        raise ValueError(message)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(message) from exc
    if not math.isfinite(number) or number <= 0:
        raise ValueError(message)
    return number


def check_marker_side(value: Any) -> float:
    """The marker side as a float; anything but a positive finite number of millimetres is a ValueError."""
    return positive_number(value, f"--marker must be the marker's side in millimetres, a positive number, got {value}")


@dataclass(frozen=True)
class MarkerSpec:
    """An ArUco marker on the wall: its printed side (mm, the black square's outer edge) and its dictionary."""

    side_mm: float
    dictionary: str = DEFAULT_DICTIONARY

    def __post_init__(self) -> None:
        object.__setattr__(self, "side_mm", check_marker_side(self.side_mm))
        if self.dictionary not in dictionary_names():
            raise ValueError(f"unknown marker dictionary {self.dictionary!r}; one of: {', '.join(dictionary_names())}")

    def to_json(self) -> dict[str, Any]:
        return {"side_mm": self.side_mm, "dictionary": self.dictionary}


@dataclass(frozen=True)
class Marker:
    """A detected marker: its id and corners (4, 2) as photo (x, y), clockwise from the marker's own top-left."""

    id: int
    corners: np.ndarray

    @property
    def side_px(self) -> float:
        """Mean side length in photo pixels."""
        return float(np.mean(np.linalg.norm(self.corners - np.roll(self.corners, -1, axis=0), axis=1)))


def detect_markers(gray: np.ndarray, dictionary: str = DEFAULT_DICTIONARY) -> list[Marker]:
    """Every marker of the dictionary in a grey (H, W) uint8 photo, largest first, corners to sub-pixel.

    Markers are searched at most DETECT_SIDE pixels across (the search costs per pixel; markers stay tens of pixels
    wide there) and, if none is found on a larger photo, once more at full size; the corners are refined on it."""
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"detect_markers takes a grey uint8 (H, W) photo, got {gray.dtype} {gray.shape}")
    table = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary))
    detector = cv2.aruco.ArucoDetector(table, cv2.aruco.DetectorParameters())
    scale = min(1.0, DETECT_SIDE / max(gray.shape))
    corners, ids = _detect(detector, gray, scale)
    if not corners and scale < 1.0:
        corners, ids = _detect(detector, gray, 1.0)
    markers = [Marker(int(i), c) for c, i in zip(corners, ids) if _side(c) >= _MIN_MARKER_PX]
    for marker in markers:
        _refine(gray, marker.corners, cells=table.markerSize + 2)
    return sorted(markers, key=lambda m: -m.side_px)


def _detect(detector: Any, gray: np.ndarray, scale: float) -> tuple[list[np.ndarray], list[int]]:
    """Corners (in full-photo pixels) and ids found at `scale`."""
    small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    corners, ids, _ = detector.detectMarkers(small)
    if ids is None:
        return [], []
    # Pixel centres sit at integers, so a point x at scale s is at (x + 0.5) / s - 0.5 on the full photo.
    found = [(np.asarray(c, np.float64).reshape(4, 2) + 0.5) / scale - 0.5 for c in corners]
    return found, [int(i) for i in np.ravel(ids)]


def _side(corners: np.ndarray) -> float:
    return float(np.min(np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1)))


def _refine(gray: np.ndarray, corners: np.ndarray, cells: int) -> None:
    """Move the corners (in place) to sub-pixel positions on the full photo.

    The search window stays within a third of the marker's cell (a 4x4 marker is 6 cells across, border
    included) so that it sees the outer corner and none of the inner ones."""
    half = int(np.clip(_side(corners) / cells / 3.0, 2, 12))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 40, 0.01)
    pts = corners.astype(np.float32).reshape(-1, 1, 2)
    cv2.cornerSubPix(gray, pts, (half, half), (-1, -1), criteria)
    corners[:] = pts.reshape(4, 2)


@dataclass(frozen=True)
class Plane:
    """Photo pixels to wall-plane units by a homography: millimetres when the scale is known, else photo pixels."""

    homography: np.ndarray  # (3, 3): (x, y, 1) in photo pixels to the plane, up to scale
    unit: str  # "mm" or "px"
    source: dict[str, Any] = field(default_factory=dict)  # how the scale was found, as written to the report
    marker: Marker | None = None

    @classmethod
    def pixels(cls, **source: Any) -> "Plane":
        """No scale: the plane is the photo, in pixels."""
        return cls(np.eye(3), "px", {"source": None, **source})

    @classmethod
    def uniform(cls, mm_per_px: float) -> "Plane":
        """One scale for the whole photo (a photo taken head-on at a known distance)."""
        return cls(np.diag([mm_per_px, mm_per_px, 1.0]), "mm", {"source": "mm_per_px", "mm_per_px": mm_per_px})

    @classmethod
    def from_marker(cls, marker: Marker, side_mm: float, shape: tuple[int, int], found: int = 1) -> "Plane":
        """The plane through a marker's corners; ValueError when the plane is not in front of the whole photo."""
        square = np.array([[0.0, 0.0], [side_mm, 0.0], [side_mm, side_mm], [0.0, side_mm]])
        homography, _ = cv2.findHomography(marker.corners, square, 0)
        if homography is None:
            raise ValueError(f"marker {marker.id}: its corners give no plane")
        plane = cls(homography, "mm", {}, marker)
        h, w = shape
        frame = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float)
        depth = plane._w(np.vstack([frame, marker.corners]))
        if not (np.all(depth > 0) or np.all(depth < 0)):
            raise ValueError(f"marker {marker.id}: the wall's horizon would cross the photo; its corners are wrong")
        at_frame = plane.mm_per_px(frame)
        centre = marker.corners.mean(axis=0, keepdims=True)
        source = {"source": "marker", "id": marker.id, "side_mm": side_mm, "marker_side_px": marker.side_px,
                  "mm_per_px_at_marker": float(plane.mm_per_px(centre)[0]),
                  "mm_per_px_range": [float(at_frame.min()), float(at_frame.max())], "markers_found": found}
        object.__setattr__(plane, "source", source)
        return plane

    def _w(self, xy: np.ndarray) -> np.ndarray:
        return self.homography[2, 0] * xy[:, 0] + self.homography[2, 1] * xy[:, 1] + self.homography[2, 2]

    def to_plane(self, xy: np.ndarray) -> np.ndarray:
        """Photo (x, y) points (n, 2) in plane units."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        return (xy @ self.homography[:2, :2].T + self.homography[:2, 2]) / self._w(xy)[:, None]

    def to_photo(self, plane_xy: np.ndarray) -> np.ndarray:
        """Plane points (n, 2) as photo (x, y)."""
        inverse = np.linalg.inv(self.homography)
        pts = np.asarray(plane_xy, np.float64).reshape(-1, 2)
        w = inverse[2, 0] * pts[:, 0] + inverse[2, 1] * pts[:, 1] + inverse[2, 2]
        return (pts @ inverse[:2, :2].T + inverse[:2, 2]) / w[:, None]

    def jacobian(self, xy: np.ndarray) -> np.ndarray:
        """(n, 2, 2) derivative of the plane point by the photo point at each (x, y)."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        mapped, w = self.to_plane(xy), self._w(xy)
        return (self.homography[None, :2, :2] - mapped[:, :, None] * self.homography[None, 2, None, :2]) / w[:, None, None]

    def stretch(self, xy: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """Plane units per photo pixel along photo unit directions (n, 2) at (x, y) (n, 2)."""
        return np.linalg.norm(np.einsum("nij,nj->ni", self.jacobian(xy), np.asarray(direction, float).reshape(-1, 2)), axis=1)

    def across(self, xy: np.ndarray, normal: np.ndarray) -> np.ndarray:
        """Plane units per photo pixel of a band's width measured along the photo unit normal (n, 2) at (x, y).

        A band of plane width w across the plane normal N appears in the photo with normal n ~ J^T N and width
        w / |J^T N|, so w = photo width / |J^-T n|."""
        inv_t = np.linalg.inv(self.jacobian(xy)).transpose(0, 2, 1)
        return 1.0 / np.linalg.norm(np.einsum("nij,nj->ni", inv_t, np.asarray(normal, float).reshape(-1, 2)), axis=1)

    def plane_normal(self, xy: np.ndarray, normal: np.ndarray) -> np.ndarray:
        """Unit plane directions (n, 2) across a band whose photo unit normal at (x, y) is `normal`."""
        inv_t = np.linalg.inv(self.jacobian(xy)).transpose(0, 2, 1)
        out = np.einsum("nij,nj->ni", inv_t, np.asarray(normal, float).reshape(-1, 2))
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def area_factor(self, xy: np.ndarray) -> np.ndarray:
        """Plane area per photo pixel at each (x, y): |det H| / |w|^3 for x -> H x / w."""
        return np.abs(np.linalg.det(self.homography)) / np.abs(self._w(np.asarray(xy, np.float64).reshape(-1, 2))) ** 3

    def mm_per_px(self, xy: np.ndarray) -> np.ndarray:
        """The local scale (plane units per photo pixel, the square root of the area factor) at each (x, y)."""
        return np.sqrt(self.area_factor(xy))


def find_plane(gray: np.ndarray | None, marker: MarkerSpec | None = None, mm_per_px: float | None = None) -> Plane:
    """The plane of one photo: through the largest marker found, else `mm_per_px` (when given), else pixels.

    Without a usable marker the returned plane's source says why ("note"), so the report can name the photo."""
    if marker is not None and gray is not None:
        found = detect_markers(gray, marker.dictionary)
        note = f"no {marker.dictionary} marker found"
        for candidate in found:
            try:
                return Plane.from_marker(candidate, marker.side_mm, gray.shape[:2], found=len(found))
            except ValueError as exc:
                note = str(exc)
        if mm_per_px is None:
            return Plane.pixels(note=note)
        given = Plane.uniform(mm_per_px)
        return Plane(given.homography, given.unit, {**given.source, "note": note})
    if mm_per_px is not None:
        return Plane.uniform(mm_per_px)
    return Plane.pixels()


def marker_region(shape: tuple[int, int], marker: Marker, grow: float = 1.5) -> np.ndarray:
    """Bool (H, W): the marker's square grown `grow` times about its centre, which takes in its white frame (a
    printed 4x4 marker with a one-cell frame is 8/6 of its side across)."""
    centre = marker.corners.mean(axis=0)
    corners = centre + (marker.corners - centre) * grow
    region = np.zeros(shape, np.uint8)
    cv2.fillPoly(region, [np.round(corners).astype(np.int32)], 1)
    return region > 0


def hide_marker(photo: np.ndarray, marker: Marker) -> np.ndarray:
    """The photo with the marker and its frame painted over in the median colour of the wall around them.

    A segmentation model never trained on markers reads their high-contrast squares as the most salient thing in
    the photo and can miss the crack beside them; measurement still reads the real photo."""
    region = marker_region(photo.shape[:2], marker)
    around = cv2.dilate(region.view(np.uint8), np.ones((15, 15), np.uint8)) > 0
    out = np.array(photo, copy=True)
    out[region] = np.median(photo[around & ~region], axis=0).astype(photo.dtype)
    return out
