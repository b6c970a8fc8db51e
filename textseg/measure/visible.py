"""A crack's visible width, read from the photo: the width of the dark valley across its centre line.

The mask says where a crack is; a model trained on generous polygons draws it several times wider than the crack.
Across the centre line the crack is a valley in brightness; its width at half its depth below the wall on either
side does not depend on how wide the mask is, as long as the mask covers the valley. Profiles are sampled along
the wall plane's normal (so in millimetres when the plane has a scale), three parallel lines averaged against
sensor noise, and read bilinearly from the photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi

from textseg.measure.plane import Plane

MIN_CONTRAST = 8.0  # grey levels (of 255) a valley must lie below the wall beside it to count as seen
SAMPLE_PX = 0.25  # profile sampling step, in photo pixels
_MARGIN_PX = 4.0  # the wall is read at least this many photo pixels beyond the mask's edge
_PARALLEL_PX = 1.0  # spacing of the three averaged profile lines, along the centre line
_TRACK = 7  # profiles along the line whose darkest points, medianed, say where the valley runs
_TRACK_PX = 2.0  # the valley is looked for this far (photo px; or a quarter of the mask's half-width) from there
MAX_SAMPLES = 96  # samples either side of the centre line at most: a wide mask's profiles are sampled more coarsely
_REMAP_ROWS = 32000


@dataclass
class Profiles:
    """Intensity profiles across a centre line and what was read from them (plane units; nan where unread)."""

    offsets: np.ndarray  # (n, m) position of each sample across the line, plane units, 0 at the centre line
    values: np.ndarray  # (n, m) grey level (0-255) of each sample, nan off the photo
    wall: np.ndarray  # (n,) brightness of the wall beside the valley
    floor: np.ndarray  # (n,) the valley's darkest level
    left: np.ndarray  # (n,) half-depth crossings either side
    right: np.ndarray
    mask_half: np.ndarray  # (n,) half the mask's width there, plane units

    @property
    def widths(self) -> np.ndarray:
        """(n,) visible width at each profile: right crossing - left crossing; nan where no valley was seen."""
        return self.right - self.left


def grey(photo: np.ndarray) -> np.ndarray:
    """A photo as float32 grey levels (H, W): RGB by luma, a grey photo as it is."""
    arr = np.asarray(photo)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return cv2.cvtColor(arr.astype(np.uint8, copy=False), cv2.COLOR_RGB2GRAY).astype(np.float32)
    if arr.ndim == 2:
        return arr.astype(np.float32, copy=False)
    raise ValueError(f"photo must be (H, W, 3) RGB or (H, W) grey, got shape {arr.shape}")


def profiles(
    gray: np.ndarray, plane: Plane, points: np.ndarray, normals: np.ndarray, mask_half_px: np.ndarray
) -> Profiles:
    """Profiles across the centre line at photo points (n, 2) (x, y) with photo unit normals (n, 2), each reaching
    past the mask (half-width `mask_half_px` photo pixels there) by as much again, and at least _MARGIN_PX.

    Each profile runs along the plane's normal to the line. A homography keeps lines straight, so the profile is a
    straight photo line p + t d, sampled evenly in t; a sample's plane offset is then t |J d| / (1 + t b), with
    b the rate at which the homography's denominator changes along d: exact, and with no per-sample mapping."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    n = len(points)
    jac = plane.jacobian(points)
    across = plane.plane_normal(points, normals)  # (n, 2) unit, plane
    d = np.linalg.solve(jac, across[:, :, None])[:, :, 0]
    d /= np.linalg.norm(d, axis=1, keepdims=True)  # photo direction of the plane normal
    stretch = np.linalg.norm(np.einsum("nij,nj->ni", jac, d), axis=1)
    w = plane.homography[2, 0] * points[:, 0] + plane.homography[2, 1] * points[:, 1] + plane.homography[2, 2]
    rate = (plane.homography[2, 0] * d[:, 0] + plane.homography[2, 1] * d[:, 1]) / w
    half = np.asarray(mask_half_px, np.float64).reshape(-1) + 0.5
    reach = half + np.maximum(half, _MARGIN_PX)  # photo pixels either side
    steps = int(np.clip(np.ceil(reach.max() / SAMPLE_PX), 4, MAX_SAMPLES)) if n else 4
    t = np.linspace(-1.0, 1.0, 2 * steps + 1)[None, :] * reach[:, None]  # (n, m) photo pixels along d
    offsets = t * stretch[:, None] / (1.0 + t * rate[:, None])  # plane units
    along = np.stack([-d[:, 1], d[:, 0]], axis=1)
    values = np.zeros(t.shape, np.float32)
    for shift in (-_PARALLEL_PX, 0.0, _PARALLEL_PX):
        start = points + shift * along
        xs = (start[:, 0:1] + t * d[:, 0:1]).astype(np.float32)
        ys = (start[:, 1:2] + t * d[:, 1:2]).astype(np.float32)
        values += _sample(gray, xs, ys)
    values /= 3.0
    half_plane, reach_plane = half * stretch, reach * stretch
    # A crack runs on: its valley lies where its neighbours' does. The darkest point of each profile, smoothed
    # along the line, says where; the valley is then looked for near there, so a darker stain or shadow beside the
    # crack (inside a generous mask) is not taken for it.
    first = _darkest(offsets, values, np.abs(offsets) <= half_plane[:, None])
    track = ndi.median_filter(offsets[np.arange(n), first], size=min(_TRACK, n), mode="nearest") if n else np.zeros(0)
    near = np.abs(offsets - track[:, None]) <= np.maximum(_TRACK_PX * stretch, 0.25 * half_plane)[:, None]
    near &= np.abs(offsets) <= half_plane[:, None]
    wall, floor, left, right = _half_depth(offsets, values, half_plane, reach_plane, near, stretch)
    return Profiles(offsets, values, wall, floor, left, right, half_plane)


def _darkest(offsets: np.ndarray, values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Index of each row's darkest sample among `where` (the row's middle when none qualifies)."""
    candidates = np.where(where & np.isfinite(values), values, np.inf)
    found = np.argmin(candidates, axis=1)
    return np.where(np.isfinite(candidates.min(axis=1)), found, offsets.shape[1] // 2) if len(values) else found


def _sample(gray: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear grey levels at photo (xs, ys) (n, m), nan outside the photo (cv2.remap: 10x map_coordinates)."""
    out = np.empty(xs.shape, np.float32)
    for start in range(0, len(xs), _REMAP_ROWS):  # remap's maps are limited to 32767 rows
        rows = slice(start, start + _REMAP_ROWS)
        out[rows] = cv2.remap(gray, xs[rows], ys[rows], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=np.nan)
    return out


def _half_depth(
    offsets: np.ndarray, values: np.ndarray, half: np.ndarray, reach: np.ndarray, near: np.ndarray, px: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Wall level, valley floor, and the half-depth crossings left and right of the floor (nan where unread).

    The floor is the darkest sample `near` the valley's track. The wall is first read beyond the mask's edge on
    each side (the median of each side, the two averaged); then again beside the valley so found, a gap and a
    stretch of its own width out (at least 1 and 4 photo pixels, `px` plane units each), so that neither the wall
    nor the width depends on how far the mask reaches past the crack. Each crossing is interpolated between the
    samples that straddle it."""
    n = len(values)
    if n == 0:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    darkest = _darkest(offsets, values, near)
    floor = values[np.arange(n), darkest].astype(np.float64)
    dist = np.abs(offsets)
    beyond = (dist > half[:, None]) & (dist <= reach[:, None])
    left, right, wall = _crossings(offsets, values, darkest, floor, beyond & (offsets < 0), beyond & (offsets > 0))
    width = right - left
    gap = np.maximum(px, 0.5 * width)[:, None]
    zone = np.maximum(4.0 * px, width)[:, None]
    left_zone = (offsets <= (left[:, None] - gap)) & (offsets >= (left[:, None] - gap - zone))
    right_zone = (offsets >= (right[:, None] + gap)) & (offsets <= (right[:, None] + gap + zone))
    beside = np.isfinite(width) & (left_zone.sum(axis=1) >= 2) & (right_zone.sum(axis=1) >= 2)
    left2, right2, wall2 = _crossings(offsets, values, darkest, floor, left_zone, right_zone)
    keep = beside & np.isfinite(left2)
    left, right = np.where(beside, left2, left), np.where(beside, right2, right)
    wall = np.where(keep, wall2, wall)
    return wall, floor, left, right


def _crossings(
    offsets: np.ndarray, values: np.ndarray, darkest: np.ndarray, floor: np.ndarray, left_zone: np.ndarray,
    right_zone: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-depth crossings either side of the floor, and the wall level, with the wall read in the two zones."""
    n, m = values.shape
    rows = np.arange(n)
    left_wall = _nanmedian(np.where(left_zone, values, np.nan))
    right_wall = _nanmedian(np.where(right_zone, values, np.nan))
    wall = (left_wall + right_wall) / 2.0
    level = (wall + floor) / 2.0
    seen = (wall - floor >= MIN_CONTRAST) & (np.minimum(left_wall, right_wall) > level)
    j = np.arange(m)[None, :]
    above = values >= level[:, None]  # nan compares False: off the photo never ends the valley
    before = np.where(above & (j < darkest[:, None]), j, -1).max(axis=1)
    after = np.where(above & (j > darkest[:, None]), j, m).min(axis=1)
    seen &= (before >= 0) & (after < m)
    left = _crossing(offsets, values, level, np.clip(before, 0, m - 2), rows)
    right = _crossing(offsets, values, level, np.clip(after - 1, 0, m - 2), rows)
    nan = np.full(n, np.nan)
    return np.where(seen, left, nan), np.where(seen, right, nan), wall


def _crossing(offsets: np.ndarray, values: np.ndarray, level: np.ndarray, j: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Where the profile crosses `level` between samples j and j + 1, linearly interpolated."""
    v0, v1 = values[rows, j].astype(np.float64), values[rows, j + 1].astype(np.float64)
    o0, o1 = offsets[rows, j], offsets[rows, j + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip((level - v0) / (v1 - v0), 0.0, 1.0)
    return o0 + np.nan_to_num(frac) * (o1 - o0)


def _nanmedian(values: np.ndarray) -> np.ndarray:
    """Row medians ignoring nan (nan for a row with none), without numpy's all-nan warning."""
    out = np.full(values.shape[0], np.nan)
    has = np.isfinite(values).any(axis=1)
    if has.any():
        out[has] = np.nanmedian(values[has], axis=1)
    return out
