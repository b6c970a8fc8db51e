"""Each separate defect (crack or taping seam) in a binary mask: how long, how wide, how many; in photo pixels, and
in the wall plane's millimetres when the photo's scale is known (textseg.measure.plane), with the crack's visible
width read from the photo when it is at hand (textseg.measure.visible)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import disk

from textseg import CLASSES
from textseg.measure.plane import Plane, positive_number
from textseg.measure.skeleton import Skeleton, centre_line, ends, near, normals, polyline_length, ridge_widths
from textseg.measure.visible import Profiles, grey, profiles

logger = logging.getLogger(__name__)

WIDTH_CLASSES: tuple[tuple[str, float], ...] = (("hairline", 0.1), ("fine", 1.0), ("medium", 2.0), ("wide", math.inf))
"""Crack width classes as (name, upper bound in mm); a width takes the first class whose bound it does not exceed."""

GAP_PX = 2  # parts of one defect up to 2 * GAP_PX background pixels apart count once (noise breaks a crack)
MIN_AREA_PX = 16  # the smallest defect kept by default: a few pixels are noise, not a crack
_RAY_STEP_PX = 0.1  # sampling step when following a centre line's end out to the mask's edge
_MEDIAN_PX = 5  # running median along the centre line before taking the max width: ignores 1-2 px bumps
_VISIBLE_SHARE = 0.25  # a visible width needs a valley seen on at least this share of the centre line...
_VISIBLE_MIN = 3  # ...and at this many points
_VISIBLE_TRIM = 0.1  # the visible mean leaves out this share of profiles at either end: a shadow or a chip
_PROFILES_LEAST = 16  # a short defect still gets this many profiles (or one per centre-line pixel)
_SEEN_STEP_PX = 0.5  # least sampling step along a centre line's end when reading from the photo where the defect ends


@dataclass
class Defect:
    """One separate defect. Sizes in photo pixels always; in the wall plane's millimetres when the photo's scale is
    known; the visible widths (mm when scaled, else px) when the photo was at hand. Max widths are the largest
    5-point running median along the centre line, so one-pixel bumps do not set them."""

    id: int  # 1..n, largest area first
    cls: str  # "crack" or "taping"
    length_px: float  # along the pruned skeleton, out to the mask's edge at each end
    mean_width_px: float  # mean of 2 * DT - 1 (DT at the ridge, to sub-pixel) on the centre line, off ends and junctions
    max_width_px: float  # largest 5-pixel running median of that width
    area_px: int  # mask pixels of this defect
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1; x1 and y1 exclusive
    orientation_deg: float  # major axis; 0 = horizontal, counter-clockwise in image view, in (-90, 90]
    centroid: tuple[float, float]  # x, y
    length_mm: float | None = None  # the same sizes in the wall plane, measured through its homography
    mean_width_mm: float | None = None
    max_width_mm: float | None = None
    area_mm2: float | None = None
    photo_read: bool = False  # whether the photo was at hand for the visible widths
    visible_width: float | None = None  # mean half-depth width of the dark valley (None: no valley seen)
    visible_max_width: float | None = None
    visible_length: float | None = None  # centre line with its ends where the photo's valley fades to half depth
    profiles: Profiles | None = field(default=None, repr=False, compare=False)  # kept when asked for

    @property
    def unit(self) -> str:
        """Unit of the plane sizes and visible widths: "mm" when the scale is known, else "px"."""
        return "mm" if self.length_mm is not None else "px"

    def class_width(self) -> tuple[float, str] | None:
        """The width a crack is classed by, in mm, and where it came from ("visible", else "mask"); None unscaled."""
        if self.max_width_mm is None:
            return None
        if self.visible_max_width is not None:
            return self.visible_max_width, "visible"
        return self.max_width_mm, "mask"

    def to_dict(self, width_classes: Sequence[tuple[str, float]] = WIDTH_CLASSES) -> dict[str, Any]:
        """JSON-ready dict; the millimetre sizes and width class (cracks only) when scaled."""
        out: dict[str, Any] = {
            "id": int(self.id),
            "class": self.cls,
            "length_px": round(float(self.length_px), 2),
            "mean_width_px": round(float(self.mean_width_px), 2),
            "max_width_px": round(float(self.max_width_px), 2),
            "area_px": int(self.area_px),
            "bbox": [int(v) for v in self.bbox],
            "orientation_deg": round(float(self.orientation_deg), 1),
            "centroid": [round(float(v), 1) for v in self.centroid],
        }
        if self.length_mm is not None:
            out.update({"length_mm": _mm(self.length_mm), "mean_width_mm": _mm(self.mean_width_mm),
                        "max_width_mm": _mm(self.max_width_mm), "area_mm2": _mm(self.area_mm2)})
        if self.photo_read:
            out[f"visible_length_{self.unit}"] = _mm(self.visible_length)
            out[f"visible_width_{self.unit}"] = _mm(self.visible_width)
            out[f"visible_max_width_{self.unit}"] = _mm(self.visible_max_width)
        classed = self.class_width()
        if classed is not None:
            # Width classes grade cracks; a taping seam's width is set by the tape, not by damage.
            crack = self.cls == "crack"
            out["width_class"] = width_class(classed[0], width_classes) if crack else None
            out["width_from"] = classed[1] if crack else None
        return out


def _mm(value: float | None) -> float | None:
    """Millimetres (or pixels) to the thousandth, as a report shows them."""
    return None if value is None else round(float(value), 3)


def check_binary(mask: np.ndarray, source: str = "mask") -> np.ndarray:
    """Return `mask` as bool; it must be bool, or integers whose values lie in {0, 1} or in {0, 255}."""
    arr = np.asarray(mask)
    if arr.dtype == bool:
        return arr
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size == 0:
            return arr != 0
        lo, hi = arr.min(), arr.max()
        # min and max settle 0/1 masks; only 0/255 ones need a further, exact pass.
        if lo >= 0 and (hi <= 1 or (hi == 255 and not np.any((arr != 0) & (arr != 255)))):
            return arr != 0
    values = np.unique(arr)
    shown = ", ".join(str(v) for v in values[:6]) + (", ..." if values.size > 6 else "")
    raise ValueError(
        f"{source}: expected a binary mask (bool, or integers 0/1 or 0/255), got dtype {arr.dtype} with "
        f"{values.size} distinct values {{{shown}}}; threshold it first, e.g. mask > 127 (or > 0.5 for probabilities)"
    )


def check_mm_per_px(value: Any) -> float | None:
    """The scale as a float (None passes through); anything but a positive finite number is a ValueError."""
    if value is None:
        return None
    return positive_number(value, f"--mm-per-px must be a positive number of millimetres per pixel, got {value}")


def width_class(width_mm: float, classes: Sequence[tuple[str, float]] = WIDTH_CLASSES) -> str:
    """Name of the first class whose upper bound (mm) the width does not exceed."""
    if not width_mm >= 0:  # also catches nan
        raise ValueError(f"crack width must be a non-negative number of millimetres, got {width_mm}")
    for name, bound in classes:
        if width_mm <= bound:
            return name
    raise ValueError(f"width {width_mm} mm is above every bound in {list(classes)}; end with an unbounded class")


def parse_width_classes(spec: Sequence[str] | str) -> tuple[tuple[str, float], ...]:
    """Parse ["hairline=0.1", "fine=1", "medium=2", "wide"] (or that comma-separated) into width classes."""
    items = [str(item).strip() for item in (spec.split(",") if isinstance(spec, str) else spec)]
    example = "e.g. hairline=0.1 fine=1 medium=2 wide"
    if not items:
        raise ValueError(f"width classes: none given; {example}")
    classes: list[tuple[str, float]] = []
    for i, item in enumerate(items):
        name, sep, bound_text = (part.strip() for part in item.partition("="))
        last = i == len(items) - 1
        if not name:
            raise ValueError(f"width classes: {item!r} has no class name; {example}")
        if name in (known for known, _ in classes):
            raise ValueError(f"width classes: class name {name!r} appears twice")
        if not sep and not last:
            raise ValueError(f"width classes: {item!r} has no upper bound; only the last class may omit it; {example}")
        try:
            bound = float(bound_text) if sep else math.inf
        except ValueError as exc:
            raise ValueError(f"width classes: {item!r}: bound {bound_text!r} is not a number; {example}") from exc
        if not bound > 0 or (math.isinf(bound) and not last):
            raise ValueError(f"width classes: {item!r}: the bound must be a positive number of millimetres; {example}")
        if classes and bound <= classes[-1][1]:
            raise ValueError(f"width classes: bounds must increase, but {item!r} follows {classes[-1][0]}={classes[-1][1]:g}")
        classes.append((name, bound))
    if not math.isinf(classes[-1][1]):
        raise ValueError(f"width classes: the last class must have no bound (it takes every wider crack); {example}")
    return tuple(classes)


def summarize(
    defects: Sequence[Defect], width_classes: Sequence[tuple[str, float]] = WIDTH_CLASSES, scaled: bool | None = None
) -> dict[str, Any]:
    """Count, total length, max width and total area; when scaled (default: every defect has mm sizes) also in mm and
    cracks per width class; the largest visible width when photos were read."""
    if scaled is None:
        scaled = bool(defects) and all(d.length_mm is not None for d in defects)
    out: dict[str, Any] = {
        "count": len(defects),
        "total_length_px": round(float(sum(d.length_px for d in defects)), 2),
        "max_width_px": round(float(max((d.max_width_px for d in defects), default=0.0)), 2),
        "total_area_px": int(sum(d.area_px for d in defects)),
    }
    if scaled:
        out["total_length_mm"] = _mm(sum(d.length_mm or 0.0 for d in defects))
        out["max_width_mm"] = _mm(max((d.max_width_mm or 0.0 for d in defects), default=0.0))
        out["total_area_mm2"] = _mm(sum(d.area_mm2 or 0.0 for d in defects))
        counts = {name: 0 for name, _ in width_classes}
        for d in defects:
            classed = d.class_width()
            if d.cls == "crack" and classed is not None:
                counts[width_class(classed[0], width_classes)] += 1
        out["count_by_width_class"] = counts
    for unit in ("px", "mm") if scaled else ("px",):
        read = [d for d in defects if d.photo_read and d.unit == unit]
        if read:
            # The photo's lengths, the mask's for a defect whose valley was not seen: the lengths the overlays show.
            shown = (d.visible_length if d.visible_length is not None else (d.length_mm if unit == "mm" else d.length_px)
                     for d in read)
            out[f"total_visible_length_{unit}"] = _mm(sum(shown))
            seen = [d.visible_max_width for d in read if d.visible_max_width is not None]
            out[f"max_visible_width_{unit}"] = _mm(max(seen)) if seen else None
    return out


def measure_mask(
    mask: np.ndarray, cls: str = "crack", gap_px: int = GAP_PX, min_area_px: int = MIN_AREA_PX, plane: Plane | None = None,
    photo: np.ndarray | None = None, keep_profiles: bool = False,
) -> list[Defect]:
    """Measure every separate defect in a binary mask, largest area first.

    plane: the wall plane (Plane.uniform(mm_per_px), or through a marker: textseg.measure.plane.find_plane) for
    millimetre sizes. photo: the photo the mask is of, RGB (H, W, 3) or grey (H, W), for the visible widths.
    keep_profiles: keep each defect's intensity profiles (Defect.profiles) for plotting."""
    if cls not in CLASSES:
        raise ValueError(f"cls must be one of {CLASSES}, got {cls!r}")
    if np.ndim(mask) != 2:
        raise ValueError(f"mask must be 2-D (height, width), got shape {np.shape(mask)}")
    if int(gap_px) != gap_px or gap_px < 0:
        raise ValueError(f"gap_px must be a non-negative integer, got {gap_px}")
    if int(min_area_px) != min_area_px or min_area_px < 0:
        raise ValueError(f"min_area_px must be a non-negative integer, got {min_area_px}")
    binary = check_binary(mask)
    gray = None
    if photo is not None:
        if np.shape(photo)[:2] != binary.shape:
            raise ValueError(f"photo size {np.shape(photo)[:2]} does not match mask size {binary.shape}")
        gray = grey(photo)
    if not binary.any():
        return []
    plane = plane if plane is not None else Plane.pixels()
    scaled = plane.unit == "mm"
    gap_px = int(gap_px)
    # A defect broken by noise counts once: pixels up to 2 * gap_px background pixels apart join one defect.
    # OpenCV labels a 12 MP mask about 3x faster than SciPy and gives the boxes with the labels.
    grouped = _grow(binary, gap_px) if gap_px else binary
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grouped.view(np.uint8), connectivity=8)
    areas = np.bincount(labels[binary], minlength=count)  # mask pixels only: grown ones do not count
    found = []
    for index in range(1, count):
        if areas[index] < max(min_area_px, 1):
            continue
        x, y, w, h = stats[index, :4]
        box = (slice(y, y + h), slice(x, x + w))
        own = (labels[box] == index) & binary[box]
        part = _Component(own, (box[0].start, box[1].start), gap_px)
        defect = part.defect(cls)
        if scaled:
            part.scale(defect, plane)
        if gray is not None:
            part.read_visible(defect, gray, plane, keep_profiles)
        found.append(defect)
    logger.debug("%d %s defect(s) measured; %d under %d px dropped", len(found), cls, count - 1 - len(found), min_area_px)
    found.sort(key=lambda d: (-d.area_px, d.bbox[1], d.bbox[0]))
    for new_id, defect in enumerate(found, start=1):
        defect.id = new_id
    return found


def _grow(binary: np.ndarray, radius: int) -> np.ndarray:
    """The mask dilated by a disk of the given radius (OpenCV's: about 20x faster than SciPy's on a 12 MP mask)."""
    return cv2.dilate(binary.view(np.uint8), disk(radius).astype(np.uint8)) > 0


def _close(binary: np.ndarray, radius: int) -> np.ndarray:
    """Binary closing by a disk, outside the array counting as background (SciPy's binary_closing, 20x faster)."""
    kernel = disk(radius).astype(np.uint8)
    closed = cv2.morphologyEx(binary.view(np.uint8), cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return closed > 0



class _Component:
    """One defect's pixels, its centre line and the widths along it; measured in photo pixels, then (on request)
    through the wall plane and against the photo."""

    def __init__(self, own: np.ndarray, origin: tuple[int, int], gap_px: int) -> None:
        """own: bool crop of the defect's own pixels; origin: that crop's (row, col) in the mask."""
        self.rows, self.cols = np.nonzero(own)
        r0, r1, c0, c1 = self.rows.min(), self.rows.max() + 1, self.cols.min(), self.cols.max() + 1
        pad = gap_px + 2  # room for the closing, and a background frame for the distance transform
        self.crop = np.pad(own[r0:r1, c0:c1], pad)
        self.box = (int(origin[1] + c0), int(origin[0] + r0), int(origin[1] + c1), int(origin[0] + r1))
        self.origin = np.array([origin[0] + r0 - pad, origin[1] + c0 - pad])  # crop (row, col) -> mask (row, col)
        self.rows, self.cols = self.rows + origin[0], self.cols + origin[1]
        closed = self.crop
        if gap_px and cv2.connectedComponents(self.crop.view(np.uint8), connectivity=8)[0] > 2:  # background + 2
            # Pieces grouped across gaps are joined for the centre line only: sizes across the defect come
            # from the mask itself (the closing also rounds inner corners, which would widen junctions).
            closed = self.crop | _close(self.crop, gap_px)
        # DT: distance to the nearest background pixel centre (OpenCV's exact Euclidean transform, 10x SciPy's speed)
        dist = cv2.distanceTransform(self.crop.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64)
        self.dist = dist
        self.skel: Skeleton = centre_line(closed, dist)
        self.paths = [np.asarray(b.path, dtype=np.int64) for b in self.skel.branches]
        self.chains = self.paths + [np.array([p]) for p in self.skel.points]
        if self.paths:
            self.index, normal, norm = normals(self.skel.coords, self.paths)
            self.index, self.normal = self.index[norm > 0], normal[norm > 0]
        else:
            self.index, self.normal = np.zeros(0, np.int64), np.zeros((0, 2))

    def xy(self, pixels: np.ndarray) -> np.ndarray:
        """Skeleton pixels (indices) as (x, y) in the mask."""
        coords = self.skel.coords[pixels] + self.origin
        return coords[:, ::-1].astype(np.float64)

    def defect(self, cls: str) -> Defect:
        """The defect measured in photo pixels."""
        orientation, major, minor = _second_moments(self.rows, self.cols)
        if self.skel.branches:
            length = _length(self.skel, self.crop)
            self.width, self.skip = _chain_widths(self.skel, self.dist)
            mean_width, max_width = _along(self.width, self.chains, self.skip)
        else:
            # A compact blob thins to a point: its extent comes from its second moments instead.
            deepest = float(self.skel.depth[self.skel.points].max()) if self.skel.points else float(self.dist.max())
            mean_width = max_width = max(2.0 * deepest - 1.0, minor)
            length = max(major, mean_width)
            self.width = np.full(len(self.skel.coords), mean_width)
            self.skip = np.zeros(len(self.skel.coords), dtype=bool)
        return Defect(
            id=0, cls=cls, length_px=float(length), mean_width_px=float(mean_width), max_width_px=float(max_width),
            area_px=int(self.rows.size), bbox=self.box, orientation_deg=orientation,
            centroid=(float(self.cols.mean()), float(self.rows.mean())),
        )

    def scale(self, defect: Defect, plane: Plane) -> None:
        """Set the defect's millimetre sizes: its centre line mapped through the plane, each width across it scaled by
        the plane's stretch across the defect there, its area by the plane's area per pixel."""
        defect.area_mm2 = float(plane.area_factor(np.stack([self.cols, self.rows], axis=1)).sum())
        if not self.skel.branches:
            local = float(plane.mm_per_px(np.array([defect.centroid]))[0])
            defect.length_mm, defect.mean_width_mm, defect.max_width_mm = (
                defect.length_px * local, defect.mean_width_px * local, defect.max_width_px * local)
            return
        defect.length_mm = _length(self.skel, self.crop, plane, self.xy)
        factor = plane.mm_per_px(self.xy(np.arange(len(self.skel.coords))))  # isotropic where no direction
        factor[self.index] = plane.across(self.xy(self.index), self.normal[:, ::-1])
        defect.mean_width_mm, defect.max_width_mm = _along(self.width * factor, self.chains, self.skip)

    def read_visible(self, defect: Defect, gray: np.ndarray, plane: Plane, keep: bool) -> None:
        """Set the defect's visible widths and length (plane units) from intensity profiles across its centre line."""
        defect.photo_read = True
        if not self.index.size:
            return
        # Widths change slowly along a crack: a profile every quarter of the mask's width is plenty, and keeps the
        # cost of a wide mask on a large photo in step with its length rather than its area.
        stride = max(1, min(int(round(float(np.median(self.width[self.index])) / 4.0)), self.index.size // _PROFILES_LEAST))
        at = self.index[::stride]
        # The mask's half-width at each point, in photo pixels (2 * DT - 1 is its width through pixel centres).
        found = profiles(gray, plane, self.xy(at), self.normal[::stride, ::-1], self.width[at] / 2.0)
        widths = np.full(len(self.skel.coords), np.nan)
        widths[at] = found.widths
        sampled = np.zeros(len(self.skel.coords), dtype=bool)
        sampled[at] = True
        chains = [c[sampled[c]] for c in self.chains]
        chains = [c for c in chains if c.size] or [at]
        # Towards a free end the centre line bends into a corner of a generous mask, and a profile there crosses
        # the crack at a slant: ends are left out over a whole typical mask width, not just the tip's own depth.
        tips = [tip for tip, _ in ends(self.skel)[0]]
        typical = float(np.median(self.skel.depth)) if len(self.skel.depth) else 0.0
        skip = self.skip | near(self.skel, tips, np.full(len(tips), 2.0 * typical))
        stats = _along(widths, chains, skip, _VISIBLE_SHARE, _VISIBLE_MIN, _VISIBLE_TRIM)
        if stats is not None:
            defect.visible_width, defect.visible_max_width = stats
            depth = float(np.median((found.wall - found.floor)[np.isfinite(found.widths)]))
            reach = lambda tip, direction, limit: self._seen_reach(gray, plane, tip, direction, limit, depth)  # noqa: E731
            defect.visible_length = _length(self.skel, self.crop, plane, self.xy, reach)
        if keep:
            defect.profiles = found

    def _seen_reach(self, gray: np.ndarray, plane: Plane, tip: int, direction: np.ndarray, limit: float,
                    typical: float) -> float:
        """How far (photo px, at most `limit`) from a centre line's end along `direction` (row, col) the photo shows a
        valley at least half as deep as the defect's typical one: the defect ends where its depth halves."""
        step = max(_SEEN_STEP_PX, float(self.width[tip]) / 16.0)
        steps = np.arange(0.0, limit + step, step)
        start = self.xy(np.array([tip]))[0]
        ahead = direction[::-1]
        points = start + steps[:, None] * ahead
        across = np.tile([-ahead[1], ahead[0]], (len(steps), 1))
        found = profiles(gray, plane, points, across, np.full(len(steps), self.width[tip] / 2.0))
        depth = np.nan_to_num(found.wall - found.floor, nan=0.0) - typical / 2.0
        gone = np.flatnonzero(depth < 0)
        if not gone.size:
            return float(limit)
        k = int(gone[0])
        if k == 0:
            return 0.0
        return float(steps[k - 1] + step * depth[k - 1] / (depth[k - 1] - depth[k]))


def _chain_widths(skel: Skeleton, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Width at each skeleton pixel (2 * DT - 1, DT at the ridge to sub-pixel), and the pixels near ends and junctions,
    whose widths say nothing about the defect: ends taper over about a half-width; a junction bulges over about a
    width, more where the closing rounded its corners or two arms cross at a sharp angle."""
    end_points, junctions = ends(skel)
    width = 2.0 * skel.depth - 1.0  # pixel centres: a 1 px line has DT 1 and width 1
    paths = [np.asarray(b.path, dtype=np.int64) for b in skel.branches]
    np.maximum.at(width, np.concatenate(paths), ridge_widths(skel.coords, paths, dist))
    tips = [tip for tip, _ in end_points]
    skip = near(skel, tips, skel.depth[tips]) | near(skel, junctions, 2.0 * skel.depth[junctions])
    skip |= skel.depth == 0  # a bridged gap: the centre line crosses background there
    return width, skip


def _along(
    values: np.ndarray, chains: list[np.ndarray], skip: np.ndarray, share: float = 0.0, least: int = 1, trim: float = 0.0
) -> tuple[float, float] | None:
    """Mean and max of per-pixel values along the centre line, off `skip` pixels (all of them, if every pixel is
    skipped); the max is that of a _MEDIAN_PX running median along each chain. nan values are left out; None when
    fewer than `least` pixels, or less than `share` of them, have a value. `trim`: the mean leaves out this share of
    the values at either end."""
    used = np.unique(np.concatenate(chains))
    inner = used[~skip[used]]
    pool = inner if inner.size else used
    valued = pool[np.isfinite(values[pool])]
    if valued.size < max(least, share * pool.size):
        return None
    kept = np.sort(values[valued])
    cut = int(trim * kept.size)
    mean = float(kept[cut : kept.size - cut].mean())
    pieces = [c[np.isfinite(values[c])] for c in chains]
    pieces = [c for c in pieces if c.size]
    smooth = np.concatenate([ndi.median_filter(values[c], size=min(_MEDIAN_PX, len(c)), mode="nearest") for c in pieces])
    keep = ~np.concatenate([skip[c] for c in pieces])
    top = float(smooth[keep].max()) if keep.any() else float(smooth.max())
    return mean, max(top, mean)


def _length(
    skel: Skeleton, inside: np.ndarray, plane: Plane | None = None, to_xy: Callable[[np.ndarray], np.ndarray] | None = None,
    seen_reach: Callable[[int, np.ndarray, float], float] | None = None,
) -> float:
    """Centre-line length: branch polylines, plus the reach from each end to the edge of `inside`; in photo pixels,
    or through the plane (`to_xy` takes skeleton pixels to photo (x, y)). `seen_reach(tip, direction, reach)` (photo
    pixels) replaces each end's reach with how far the photo shows the defect going on."""
    total = 0.0
    for b in skel.branches:
        if plane is None:
            total += b.length
        else:
            total += polyline_length(plane.to_plane(to_xy(np.asarray(b.path))), closed=b.a < 0)
    for tip, inward in ends(skel)[0]:
        depth = float(skel.depth[tip])
        direction = (skel.coords[tip] - skel.coords[inward]).astype(float)
        norm = math.hypot(direction[0], direction[1])
        # The skeleton stops about a half-width short of the defect's end. The DT is the reach in the
        # nearest direction, so along the centre line the reach is at least DT - 1/2 (pixel centre to
        # pixel edge) and, for a skeleton end, within about a local width.
        ray = _ray_reach(inside, skel.coords[tip], direction / norm, 2.0 * depth) if norm else 0.0
        reach = max(depth - 0.5, ray, 0.0)
        if seen_reach is not None and norm:
            reach = seen_reach(tip, direction / norm, reach)
        if plane is not None:
            at = to_xy(np.array([tip]))
            local = plane.stretch(at, (direction / norm)[::-1][None]) if norm else plane.mm_per_px(at)
            reach *= float(local[0])
        total += reach
    return float(total)


def _ray_reach(inside: np.ndarray, start: np.ndarray, direction: np.ndarray, limit: float) -> float:
    """Distance from a pixel centre along a unit direction to the edge of the `inside` pixels, at most `limit`."""
    t = np.arange(0.0, limit + _RAY_STEP_PX, _RAY_STEP_PX)
    pts = np.rint(start + t[:, None] * direction).astype(np.int64)
    pts = np.clip(pts, 0, np.array(inside.shape) - 1)
    outside = ~inside[pts[:, 0], pts[:, 1]]
    if not outside.any():
        return float(limit)
    first = int(np.argmax(outside))
    return float(t[first] - _RAY_STEP_PX / 2) if first else 0.0  # the edge lies between two samples




def _second_moments(rows: np.ndarray, cols: np.ndarray) -> tuple[float, float, float]:
    """Orientation (degrees, as in Defect) and major and minor axis lengths of a pixel set."""
    # These are regionprops' orientation (which it measures from the row axis, so a horizontal band
    # reads +-90 there and 0 here) and its axis_major_length / axis_minor_length (4 * sqrt of the
    # covariance eigenvalues); from the coordinates they cost time per pixel, not per bounding-box pixel.
    x = cols - cols.mean()
    y = rows.mean() - rows  # rows grow downwards; in image view "up" is positive
    sxx, syy, sxy = float(np.mean(x * x)), float(np.mean(y * y)), float(np.mean(x * y))
    angle = 0.5 * math.degrees(math.atan2(2.0 * sxy, sxx - syy))
    spread = math.hypot((sxx - syy) / 2.0, sxy)
    major = 4.0 * math.sqrt((sxx + syy) / 2.0 + spread)
    minor = 4.0 * math.sqrt(max((sxx + syy) / 2.0 - spread, 0.0))
    return (90.0 if angle == -90.0 else angle), major, minor



