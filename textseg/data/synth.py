"""Synthetic crack and drywall-seam datasets in the seed's on-disk layout (`textseg synth`).

Walls are built from multi-scale noise (plaster, concrete, pavement, stucco, brick, gypsum board),
lit, stained, shadowed and JPEG-compressed. Cracks are branching, tapered, jagged dark paths
labelled as YOLO polygons around a coarse band, like the Roboflow "cracks" export; seams are
straight board joints, paper tape or feathered joint-compound bands labelled as YOLO boxes, like
"Drywall-Join-Detect". Labels are written first and masks are made from them by
`textseg.data.labels.extract_masks`, so generation exercises the real conversion.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from textseg.data.datasets import SPLITS, available_splits, list_samples, load_target
from textseg.data.images import save_rgb
from textseg.data.labels import YoloShape, extract_masks, write_yolo_file
from textseg.progress import progress_bar
from textseg.viz import image_grid

logger = logging.getLogger(__name__)

DEFAULT_COUNTS: dict[str, int] = {"train": 48, "valid": 12, "test": 12}
ROOT_NAMES: dict[str, str] = {"crack": "cracks", "taping": "drywall"}
CLASS_INDEX: dict[str, int] = {"crack": 0, "taping": 1}
BOARD_TEXT: tuple[str, ...] = (
    '1/2" HIGH STRENGTH LITE',
    "ULTRALIGHT  GYPSUM BOARD",
    '5/8" FIRE RESISTANT TYPE X',
    "MOISTURE RESISTANT  ASTM C1396",
    '1/2" REGULAR  WALLBOARD',
)
PALETTES: dict[str, tuple[tuple[float, float, float], ...]] = {  # RGB base colours per material
    "plaster": ((0.93, 0.92, 0.88), (0.88, 0.85, 0.78), (0.85, 0.86, 0.86), (0.80, 0.87, 0.82), (0.82, 0.86, 0.90),
                (0.91, 0.86, 0.74)),
    "concrete": ((0.62, 0.62, 0.60), (0.70, 0.69, 0.66), (0.55, 0.56, 0.57), (0.74, 0.72, 0.67)),
    "pavement": ((0.42, 0.42, 0.41), (0.50, 0.49, 0.47), (0.36, 0.36, 0.37)),
    "stucco": ((0.88, 0.85, 0.76), (0.80, 0.78, 0.72), (0.90, 0.89, 0.87), (0.72, 0.80, 0.76)),
    "brick": ((0.78, 0.45, 0.28), (0.70, 0.38, 0.25), (0.82, 0.56, 0.38)),
    "gypsum": ((0.80, 0.80, 0.80), (0.86, 0.86, 0.85), (0.74, 0.75, 0.77), (0.84, 0.80, 0.74), (0.78, 0.77, 0.75),
               (0.90, 0.90, 0.89), (0.70, 0.71, 0.72), (0.82, 0.81, 0.79), (0.60, 0.80, 0.72), (0.40, 0.62, 0.56)),
    "floor": ((0.40, 0.40, 0.39), (0.50, 0.49, 0.47), (0.30, 0.30, 0.31)),
}
Polygon = np.ndarray  # (N, 2) float pixel coordinates
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of the generator; every image is a pure function of (config, seed, class, split, index)."""

    size_range: tuple[int, int] = (320, 800)  # side lengths of non-square images
    square_fraction: float = 0.5  # share of 640x640 images, Roboflow's export size
    negative_fraction: float = 0.12  # images with neither defect (empty label, empty mask)
    rotate_fraction: float = 0.3  # Roboflow-style small rotations with black corners
    cutout_fraction: float = 0.15  # Roboflow-style black squares (drywall only, as in the real export)
    jpeg_quality: tuple[int, int] = (55, 95)


@dataclass
class Scene:
    """One generated image with its labels in pixel coordinates."""

    image: np.ndarray  # (H, W, 3) float32 in [0, 1]
    polygons: list[Polygon] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)


# ---------------------------------------------------------------- textures


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Zero-mean, unit-variance noise that varies over about `cell` pixels. # (h, w) float32"""
    gh, gw = max(2, int(np.ceil(h / cell)) + 2), max(2, int(np.ceil(w / cell)) + 2)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(grid, (int((gw - 1) * cell) + 1, int((gh - 1) * cell) + 1), interpolation=cv2.INTER_CUBIC)
    oy, ox = int(rng.integers(0, big.shape[0] - h + 1)), int(rng.integers(0, big.shape[1] - w + 1))
    out = big[oy : oy + h, ox : ox + w]
    return (out - out.mean()) / (out.std() + 1e-6)


def fractal_noise(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int, persistence: float = 0.5) -> np.ndarray:
    """Sum of octaves of smooth noise from `cell` pixels down, normalised to unit variance. # (h, w)"""
    total = np.zeros((h, w), np.float32)
    for o in range(octaves):
        total += persistence**o * smooth_noise(rng, h, w, max(1.0, cell / 2**o))
    return total / (total.std() + 1e-6)


def relief(height: np.ndarray, angle: float, strength: float) -> np.ndarray:
    """Lambert-like shading of a height map lit from `angle`, around 1. # (h, w)"""
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3)
    shade = float(np.cos(angle)) * gx + float(np.sin(angle)) * gy  # python floats keep float32
    return 1.0 + strength * shade / float(shade.std() + 1e-6)


def tint(gray: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Multiply a (h, w) field around 1 by an RGB colour. # (h, w, 3)"""
    return gray[..., None] * colour[None, None, :].astype(np.float32)


def speckles(rng: np.random.Generator, img: np.ndarray, count: int, radius: tuple[float, float], tone: tuple[float, float]) -> None:
    """Paint `count` small round flecks (pores, aggregate, board specks) in place."""
    h, w = img.shape[:2]
    xs, ys = rng.uniform(0, w, count), rng.uniform(0, h, count)
    rs = rng.uniform(*radius, count)
    ts = rng.uniform(*tone, count)
    for x, y, r, t in zip(xs, ys, rs, ts):
        colour = tuple(float(c) for c in img[min(int(y), h - 1), min(int(x), w - 1)] * t)
        cv2.circle(img, (int(x), int(y)), max(0, int(round(r))), colour, -1, cv2.LINE_AA)


def random_wall_colour(rng: np.random.Generator, kind: str) -> np.ndarray:
    """A plausible base colour (RGB in [0, 1]) for a wall material."""
    base = np.array(PALETTES[kind][int(rng.integers(len(PALETTES[kind])))], np.float32)
    return np.clip(base * rng.uniform(0.92, 1.06) + rng.normal(0, 0.008, 3), 0.05, 0.98).astype(np.float32)


def plaster(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Painted plaster: smooth, light, faint mottling and trowel marks. # (h, w, 3)"""
    field_ = 1 + 0.025 * fractal_noise(rng, h, w, 160 * scale, 3) + 0.01 * smooth_noise(rng, h, w, 1.5)
    field_ *= relief(fractal_noise(rng, h, w, 16 * scale, 2), rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.012))
    return tint(field_, random_wall_colour(rng, "plaster"))


def concrete(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Concrete with mottling, multi-tone aggregate and pores. # (h, w, 3)"""
    base = random_wall_colour(rng, "concrete")
    field_ = 1 + 0.06 * fractal_noise(rng, h, w, 120 * scale, 4) + 0.04 * smooth_noise(rng, h, w, 1.2)
    height = fractal_noise(rng, h, w, 6 * scale, 2)
    field_ *= relief(height, rng.uniform(0, 2 * np.pi), 0.06)
    img = tint(field_, base)
    for cell in rng.uniform(3, 9, int(rng.integers(1, 4))) * scale:  # aggregate: layers of pebbles of one size
        stones = smooth_noise(rng, h, w, cell)
        warm = 0.06 * smooth_noise(rng, h, w, 2 * cell)[..., None] * np.array([1, 0.3, -1], np.float32)  # grey to brown
        tone = rng.uniform(0.75, 1.25) + 0.15 * smooth_noise(rng, h, w, cell)
        stone_colour = base * tone[..., None] * (1 + warm)
        alpha = np.clip((stones - rng.uniform(0.9, 1.6)) * 3.0, 0, 1)[..., None]
        img = img * (1 - alpha) + stone_colour * alpha
    speckles(rng, img, int(h * w / (900 * scale**2)), (0.6 * scale, 1.8 * scale), (0.35, 0.7))
    return img


def pavement(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Asphalt or rough pavement: dark, granular, with light chips. # (h, w, 3)"""
    field_ = 1 + 0.05 * fractal_noise(rng, h, w, 150 * scale, 3) + 0.14 * smooth_noise(rng, h, w, 1.6 * scale)
    img = tint(field_, random_wall_colour(rng, "pavement"))
    speckles(rng, img, int(h * w / (250 * scale**2)), (0.6 * scale, 2.0 * scale), (1.2, 1.7))
    speckles(rng, img, int(h * w / (400 * scale**2)), (0.5 * scale, 1.5 * scale), (0.4, 0.7))
    return img


def stucco(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Textured render: strongly embossed medium-scale bumps. # (h, w, 3)"""
    height = fractal_noise(rng, h, w, 5 * scale, 3, 0.6)
    field_ = relief(height, rng.uniform(0, 2 * np.pi), rng.uniform(0.06, 0.12)) + 0.03 * fractal_noise(rng, h, w, 120 * scale, 3)
    return tint(field_, random_wall_colour(rng, "stucco"))


def brick(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Brick courses with light mortar joints and per-brick tone. # (h, w, 3)"""
    bh, bw = int(rng.uniform(45, 80) * scale), int(rng.uniform(120, 220) * scale)
    joint = max(2, int(rng.uniform(6, 12) * scale))
    ys, xs = np.mgrid[0:h, 0:w]
    row = ys // bh
    shifted = xs + (row % 2) * (bw // 2)
    col = shifted // bw
    ids = (row * 1009 + col) % 4096
    tone = rng.uniform(0.85, 1.12, 4096).astype(np.float32)[ids]
    mortar = ((ys % bh) < joint) | ((shifted % bw) < joint)
    field_ = tone * (1 + 0.05 * fractal_noise(rng, h, w, 30 * scale, 3) + 0.04 * smooth_noise(rng, h, w, 1.3))
    img = tint(field_, random_wall_colour(rng, "brick"))
    mortar_colour = np.array([0.85, 0.80, 0.72], np.float32) * rng.uniform(0.85, 1.0)
    soft = cv2.GaussianBlur(mortar.astype(np.float32), (0, 0), 1.0)[..., None]
    return img * (1 - soft) + mortar_colour * soft * (1 + 0.05 * smooth_noise(rng, h, w, 2))[..., None]


def gypsum(rng: np.random.Generator, h: int, w: int, scale: float, colour: np.ndarray) -> np.ndarray:
    """Gypsum board paper: flat, fine grain, sparse dark specks. # (h, w, 3)"""
    field_ = 1 + 0.01 * fractal_noise(rng, h, w, 200 * scale, 3) + 0.012 * smooth_noise(rng, h, w, 1.2)
    img = tint(field_, colour)
    speckles(rng, img, int(rng.uniform(0.2, 1.5) * h * w / (2000 * scale**2)), (0.4 * scale, 1.2 * scale), (0.2, 0.6))
    return img


def floor(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Site floor behind boards: dark concrete with white paint splashes. # (h, w, 3)"""
    field_ = 1 + 0.12 * fractal_noise(rng, h, w, 90 * scale, 4)
    img = tint(field_, random_wall_colour(rng, "floor"))
    for _ in range(int(rng.integers(0, 12))):
        c = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        axes = (int(rng.uniform(3, 14) * scale), int(rng.uniform(2, 9) * scale))
        cv2.ellipse(img, c, axes, rng.uniform(0, 180), 0, 360, (0.9, 0.9, 0.88), -1, cv2.LINE_AA)
    return img


CRACK_SURFACES = {"plaster": plaster, "concrete": concrete, "pavement": pavement, "stucco": stucco, "brick": brick}
CRACK_SURFACE_WEIGHTS = np.array([0.34, 0.26, 0.12, 0.18, 0.10])


# ---------------------------------------------------------------- photographic effects


def lighting(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Linear light gradient, vignette and a colour cast. # (h, w, 3)"""
    h, w = img.shape[:2]
    u = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :]  # (1, w)
    v = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None]  # (h, 1)
    a = rng.uniform(0, 2 * np.pi)
    ramp = (np.float32(np.cos(a)) * u + np.float32(np.sin(a)) * v) * np.float32(rng.uniform(0.0, 0.35))
    r2 = (u**2 + v**2) * 2
    gain = (1 + ramp) * (1 - np.float32(rng.uniform(0, 0.25)) * r2) * np.float32(rng.uniform(0.8, 1.1))  # (h, w)
    warmth = rng.normal(0, 0.025)  # white balance: warm (R up, B down) or cool
    cast = (1 + np.array([warmth, 0.0, -warmth]) + rng.normal(0, 0.008, 3)).astype(np.float32)
    return img * gain[..., None] * cast


def stains(rng: np.random.Generator, img: np.ndarray, scale: float) -> np.ndarray:
    """Soft-edged water or dirt stains darkening and yellowing part of the wall. # (h, w, 3)"""
    h, w = img.shape[:2]
    blob = fractal_noise(rng, h, w, rng.uniform(60, 200) * scale, 3)
    alpha = np.clip((blob - rng.uniform(0.8, 1.8)) * rng.uniform(0.3, 1.0), 0, 1) * rng.uniform(0.1, 0.3)
    colour = np.array([0.55, 0.48, 0.35], np.float32) * rng.uniform(0.6, 1.0)
    return img * (1 - alpha[..., None]) + img * colour * alpha[..., None]


def shadow(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A soft cast shadow over one side of the image. # (h, w, 3)"""
    h, w = img.shape[:2]
    xs = np.arange(w, dtype=np.float32)[None, :] - w / 2  # (1, w)
    ys = np.arange(h, dtype=np.float32)[:, None] - h / 2  # (h, 1)
    a = rng.uniform(0, 2 * np.pi)
    d = float(np.cos(a)) * xs + float(np.sin(a)) * ys - rng.uniform(0.1, 0.45) * max(h, w)
    soft = 1 / (1 + np.exp(-d / rng.uniform(5, 60)))  # (h, w)
    return img * (1 - rng.uniform(0.15, 0.35) * soft)[..., None]


def camera(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Slight defocus and sensor noise; returns uint8. # (h, w, 3)"""
    sigma = rng.uniform(0.0, 1.1)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + np.float32(rng.uniform(0.003, 0.02)) * rng.standard_normal(img.shape, dtype=np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def rotate_scene(
    rng: np.random.Generator, scene: Scene, band: np.ndarray | None, seam_rects: list[Polygon]
) -> tuple[np.ndarray | None, list[Polygon]]:
    """Rotate image, crack band and seam rectangles by a small angle, black corners like Roboflow."""
    h, w = scene.image.shape[:2]
    angle = rng.uniform(5, 15) * rng.choice([-1, 1])
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    scene.image = cv2.warpAffine(scene.image, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    if band is not None:
        band = cv2.warpAffine(band, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    rects = [np.hstack([r, np.ones((len(r), 1))]) @ m.T for r in seam_rects]
    return band, rects


def cutouts(rng: np.random.Generator, img: np.ndarray, scale: float) -> None:
    """Roboflow's cutout augmentation: a few black squares, labels untouched (in place)."""
    h, w = img.shape[:2]
    side = int(rng.uniform(55, 90) * scale)
    for _ in range(int(rng.integers(3, 9))):
        x, y = int(rng.uniform(-side / 2, w - side / 2)), int(rng.uniform(-side / 2, h - side / 2))
        img[max(0, y) : y + side, max(0, x) : x + side] = 0


# ---------------------------------------------------------------- cracks


def crack_path(rng: np.random.Generator, start: np.ndarray, heading: float, length: float, step: float, wander: float) -> np.ndarray:
    """A jagged path: persistent heading with AR(1) wander plus per-vertex jitter. # (N, 2)"""
    n = max(3, int(length / step))
    drift = np.zeros(n)
    for i in range(1, n):
        drift[i] = 0.85 * drift[i - 1] + rng.normal(0, wander)
    heads = heading + drift + 0.15 * np.cumsum(rng.normal(0, wander * 0.5, n))
    steps = step * rng.uniform(0.6, 1.4, n)[:, None] * np.stack([np.cos(heads), np.sin(heads)], 1)
    pts = start + np.vstack([np.zeros((1, 2)), np.cumsum(steps, 0)[:-1]])
    return pts + rng.normal(0, step * 0.25, pts.shape)


def width_profile(rng: np.random.Generator, n: int, peak: float) -> np.ndarray:
    """Visible width along a crack: tapered ends, lumpy middle. # (n,)"""
    t = np.linspace(0, 1, n)
    taper = np.minimum(1, np.minimum(t / rng.uniform(0.05, 0.4), (1 - t) / rng.uniform(0.1, 0.5)) + 0.15)
    lumps = 1 + 0.35 * np.interp(t, np.linspace(0, 1, 8), rng.standard_normal(8))
    return np.clip(peak * taper * lumps, 0.3, None)


def crack_network(rng: np.random.Generator, h: int, w: int, scale: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Main crack plus branches (and sometimes a second crack) as (points, widths) pairs."""
    paths = []
    for k in range(1 if rng.random() < 0.8 else 2):
        side = int(rng.integers(4))
        u, v = rng.uniform(0, w), rng.uniform(0, h)
        edge = {0: (u, -5), 1: (w + 5, v), 2: (u, h + 5), 3: (-5, v)}[side]
        inside = rng.random() < 0.25 or k > 0
        start = np.array([rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h]) if inside else np.array(edge, float)
        target = np.array([rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h])
        heading = np.arctan2(*(target - start)[::-1]) + (rng.uniform(0, 2 * np.pi) if inside else rng.normal(0, 0.3))
        length = np.hypot(h, w) * (rng.uniform(0.3, 0.7) if inside else rng.uniform(0.7, 1.3))
        pts = crack_path(rng, start, heading, length, 4.5 * scale, rng.uniform(0.08, 0.3))
        peak = rng.uniform(4, 8) if rng.random() < 0.15 else rng.uniform(0.9, 4.0)  # a few wide, open cracks
        widths = width_profile(rng, len(pts), max(1.5, peak * scale * (0.6 if k else 1.0)))  # visible at any size
        paths.append((pts, widths))
        for _ in range(int(rng.integers(0, 4))):
            j = int(rng.integers(len(pts) // 6, max(len(pts) // 6 + 1, 5 * len(pts) // 6)))
            d = pts[min(j + 1, len(pts) - 1)] - pts[max(j - 1, 0)]
            bh = np.arctan2(d[1], d[0]) + rng.choice([-1, 1]) * rng.uniform(0.35, 1.1)
            bpts = crack_path(rng, pts[j], bh, length * rng.uniform(0.1, 0.4), 5 * scale, rng.uniform(0.1, 0.35))
            bw = width_profile(rng, len(bpts), max(widths[j] * rng.uniform(0.5, 0.9), 1.3 * scale, 1.2))
            bw = bw * np.linspace(1, 0.5, len(bpts))
            paths.append((bpts, bw))
    return paths


def draw_crack(rng: np.random.Generator, img: np.ndarray, paths: list[tuple[np.ndarray, np.ndarray]], scale: float) -> np.ndarray:
    """Darken the wall along the crack paths (anti-aliased core + soft halo); returns the image."""
    h, w = img.shape[:2]
    ss = 2  # supersampling factor for sub-pixel widths
    canvas = np.zeros((h * ss, w * ss), np.uint8)
    for pts, widths in paths:
        p = np.round(pts * ss).astype(np.int32)
        shade = np.clip(1 + 0.3 * np.interp(np.linspace(0, 1, len(p)), np.linspace(0, 1, 12), rng.standard_normal(12)), 0.4, 1)
        for a, b, wd, sh in zip(p[:-1], p[1:], widths[:-1], shade[:-1]):
            value = int(255 * min(1.0, wd) * sh)
            cv2.line(canvas, tuple(int(v) for v in a), tuple(int(v) for v in b), value, max(1, int(round(wd * ss))), cv2.LINE_AA)
    core = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255  # (h, w)
    halo = cv2.GaussianBlur(core, (0, 0), rng.uniform(1.0, 3.0) * scale)
    depth = rng.uniform(0.55, 0.85)
    inner = np.array([0.12, 0.11, 0.10], np.float32) * rng.uniform(0.5, 1.5)
    img = img * (1 - rng.uniform(0.05, 0.25) * np.clip(halo * 2, 0, 1))[..., None]
    lit = np.roll(core, (1, 1), (0, 1)) * (1 - core)  # a faint chipped edge catching the light
    img = img * (1 + rng.uniform(0.0, 0.12) * lit)[..., None]
    return img * (1 - depth * core[..., None]) + inner * depth * core[..., None]


def crack_band(rng: np.random.Generator, h: int, w: int, paths: list[tuple[np.ndarray, np.ndarray]], scale: float) -> np.ndarray:
    """A coarse annotation band (10-40 px at 640) traced along each crack path. # (h, w) uint8"""
    band = np.zeros((h, w), np.uint8)
    margin = (rng.uniform(10, 20) if rng.random() < 0.2 else rng.uniform(3, 12)) * scale  # some annotators trace loosely
    for pts, widths in paths:
        coarse = pts[:: max(1, int(rng.integers(2, 5)))]
        coarse = np.vstack([coarse, pts[-1:]])
        thick = int(round(max(8 * scale, 2 * margin + np.percentile(widths, 80))))
        cv2.polylines(band, [np.round(coarse).astype(np.int32)], False, 255, thick, cv2.LINE_8)
    return band


def band_polygons(band: np.ndarray, scale: float, tolerance: float = 2.0) -> list[Polygon]:
    """Outer outlines of a band mask as coarse polygons (`tolerance` px at 640), dropping specks."""
    contours, _ = cv2.findContours((band > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        if cv2.contourArea(c) < 300 * scale**2:  # slivers where a crack only grazes the frame
            continue
        approx = cv2.approxPolyDP(c, tolerance * scale, True).reshape(-1, 2).astype(np.float64)
        if len(approx) >= 3:
            polys.append(approx)
    return polys


def clutter(rng: np.random.Generator, img: np.ndarray, scale: float) -> np.ndarray:
    """An unlabelled straight edge (door frame, skirting, panel) as a crack look-alike distractor."""
    vertical = rng.random() < 0.5
    out = np.ascontiguousarray(img.transpose(1, 0, 2)) if vertical else img.copy()  # work on a top/bottom panel
    h, w = out.shape[:2]
    width = int(rng.uniform(0.12, 0.3) * h)
    rows = slice(0, width) if rng.random() < 0.5 else slice(h - width, h)
    colour = random_wall_colour(rng, "plaster") * rng.uniform(0.7, 1.05)
    out[rows] = colour * (1 + 0.02 * smooth_noise(rng, h, w, 40 * scale))[rows][..., None]
    edge = np.zeros(h, np.float32)
    pos = width if rows.start == 0 else h - width
    edge[max(0, pos - 2) : pos + 2] = 1
    edge = cv2.GaussianBlur(edge[:, None], (0, 0), 1.5 * scale)  # (h, 1)
    out = out * (1 - 0.35 * np.clip(edge, 0, 1))[..., None]
    return np.ascontiguousarray(out.transpose(1, 0, 2)) if vertical else out


def crack_scene(rng: np.random.Generator, h: int, w: int, cfg: SynthConfig) -> Scene:
    """A wall photo with (or, for negatives, without) a crack and its polygon labels."""
    scale = float(np.sqrt(h * w)) / 640  # python float: keeps the float32 pipeline float32
    kind = list(CRACK_SURFACES)[int(rng.choice(len(CRACK_SURFACES), p=CRACK_SURFACE_WEIGHTS))]
    img = CRACK_SURFACES[kind](rng, h, w, scale)
    if rng.random() < 0.15:
        img = clutter(rng, img, scale)
    band = None
    if rng.random() >= cfg.negative_fraction:
        paths = crack_network(rng, h, w, scale)
        img = draw_crack(rng, img, paths, scale)
        band = crack_band(rng, h, w, paths, scale)
    scene = Scene(image=finish_lighting(rng, img, scale))
    if rng.random() < cfg.rotate_fraction:
        band, _ = rotate_scene(rng, scene, band, [])
    if band is not None:
        scene.polygons = band_polygons(band, scale, tolerance=rng.uniform(1.2, 3.0))
    return scene


def finish_lighting(rng: np.random.Generator, img: np.ndarray, scale: float, stain_rate: float = 0.35) -> np.ndarray:
    """Stains, shadows, lighting gradient and colour cast. # (h, w, 3)"""
    if rng.random() < stain_rate:
        img = stains(rng, img, scale)
    if rng.random() < 0.2:
        img = shadow(rng, img)
    return lighting(rng, img)


# ---------------------------------------------------------------- drywall seams


def profile_alpha(dist: np.ndarray, half: float, feather: float) -> np.ndarray:
    """1 inside |dist| < half, falling smoothly to 0 over `feather` pixels. # like dist"""
    x = np.clip((np.abs(dist) - half) / max(feather, 1e-3), 0, 1)
    return 1 - x * x * (3 - 2 * x)


def board_text(rng: np.random.Generator, length: int, scale: float) -> np.ndarray:
    """Manufacturer print along a board edge as ink coverage. # (th, length) float32"""
    font_scale = rng.uniform(0.4, 0.7) * scale
    th = max(8, int(30 * font_scale))
    strip = np.zeros((th, length), np.uint8)
    text = BOARD_TEXT[int(rng.integers(len(BOARD_TEXT)))]
    x = int(rng.uniform(0, 0.3) * length)
    while x < length:
        stroke = max(1, int(1.5 * scale))
        cv2.putText(strip, text, (x, int(th * 0.75)), cv2.FONT_HERSHEY_SIMPLEX, font_scale, 255, stroke, cv2.LINE_AA)
        x += int(rng.uniform(0.6, 1.2) * length)
    return strip.astype(np.float32) / 255


def draw_seam(
    rng: np.random.Generator, img: np.ndarray, dist: np.ndarray, along: np.ndarray, extent: tuple[float, float], scale: float
) -> float:
    """Paint one seam in place; dist (across) and along broadcast to (h, w); returns its half-width."""
    on = np.clip(np.minimum(along - extent[0], extent[1] - along) / 2 + 0.5, 0, 1)  # (h, 1) or (1, w)
    style = rng.choice(["joint", "tape", "compound"], p=[0.45, 0.2, 0.35])
    h, w = img.shape[:2]
    if style == "joint":
        if on.min() > 0.5:  # two boards meet along the whole frame: slight tone step across the joint
            img *= (1 + rng.uniform(-0.04, 0.04) * np.clip(dist / 1.5, -1, 1))[..., None]
        core = profile_alpha(dist, rng.uniform(0.3, 1.2) * scale, 1.0 * scale) * on
        img *= (1 - rng.uniform(0.25, 0.6) * core)[..., None]
        bevel = profile_alpha(dist - rng.choice([-1, 1]) * 2.5 * scale, 0.5 * scale, 1.0 * scale) * on
        img *= (1 + rng.uniform(0.0, 0.08) * bevel)[..., None]
        return 3.0 * scale
    tape_half = rng.uniform(10, 17) * scale
    if style == "compound":
        half = rng.uniform(25, 70) * scale
        feather = rng.uniform(10, 30) * scale
        alpha = profile_alpha(dist, half, feather) * on * rng.uniform(0.75, 1.0)
        board = img.reshape(-1, 3).mean(0)
        mud = np.clip(np.maximum(np.array([0.94, 0.94, 0.92]), board + 0.08) * rng.uniform(0.97, 1.03), 0, 1).astype(np.float32)
        streaks = 1 + 0.02 * smooth_noise(rng, h, w, 3 * scale) * (1 - profile_alpha(dist, half * 0.7, feather))
        smooth = cv2.GaussianBlur(img, (0, 0), 3 * scale)
        img[:] = img * (1 - alpha[..., None]) + (0.5 * smooth + 0.5 * mud) * streaks[..., None] * alpha[..., None]
        if rng.random() < 0.5:  # tape edges showing through the first coat
            for s in (-1, 1):
                img *= (1 - 0.06 * profile_alpha(dist - s * tape_half, 0.5 * scale, 1.5 * scale) * on)[..., None]
        return half + feather * 0.6
    paper = np.array([0.93, 0.91, 0.86], np.float32) * rng.uniform(0.92, 1.03)
    alpha = profile_alpha(dist, tape_half, 0.8 * scale) * on
    fibre = 1 + 0.015 * smooth_noise(rng, h, w, 1.2) - 0.03 * profile_alpha(dist, 0.5 * scale, 1.0 * scale)
    img[:] = img * (1 - alpha[..., None]) + paper * fibre[..., None] * alpha[..., None]
    for s in (-1, 1):
        img *= (1 - 0.12 * profile_alpha(dist - s * (tape_half + scale), 0.4 * scale, 1.2 * scale) * on)[..., None]
    return tape_half + scale


def screws(rng: np.random.Generator, img: np.ndarray, lines: list[tuple[bool, float]], scale: float) -> None:
    """Screw heads or mud-covered dimples in rows along studs (in place)."""
    h, w = img.shape[:2]
    spacing = rng.uniform(60, 140) * scale
    mud = rng.random() < 0.5
    for vertical, pos in lines:
        n = int((h if vertical else w) / spacing) + 1
        offset = rng.uniform(0, spacing)
        for i in range(n):
            t = offset + i * spacing + rng.normal(0, 3 * scale)
            x, y = (pos, t) if vertical else (t, pos)
            c = tuple(float(v) for v in img[int(np.clip(y, 0, h - 1)), int(np.clip(x, 0, w - 1))])
            if mud:
                radius, colour = int(rng.uniform(5, 9) * scale), tuple(min(1.0, v * 1.08) for v in c)
            else:
                radius, colour = max(1, int(rng.uniform(1.5, 3.5) * scale)), tuple(v * 0.35 for v in c)
            cv2.circle(img, (int(x), int(y)), radius, colour, -1, cv2.LINE_AA)


def seam_geometry(rng: np.random.Generator, h: int, w: int, vertical: bool) -> tuple[float, tuple[float, float]]:
    """Across-position and along-extent of a seam; most span the board, some stop at a T-joint."""
    across = rng.uniform(0.12, 0.88) * (w if vertical else h)
    length = h if vertical else w
    if rng.random() < 0.7:
        return across, (-10.0, length + 10.0)
    cut = rng.uniform(0.3, 0.8) * length
    return across, ((-10.0, cut) if rng.random() < 0.5 else (cut, length + 10.0))


def board_region(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Where the board is: full frame, or a quadrilateral over the site floor. # (h, w) float32"""
    if rng.random() < 0.6:
        return np.ones((h, w), np.float32)
    quad = np.array([[0.05, 0.05], [0.95, 0.05], [0.95, 0.95], [0.05, 0.95]]) + rng.uniform(-0.12, 0.12, (4, 2))
    quad[:, 0] *= w
    quad[:, 1] *= h
    region = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(region, np.round(quad).astype(np.int32), 255, cv2.LINE_AA)
    return region.astype(np.float32) / 255


def drywall_scene(rng: np.random.Generator, h: int, w: int, cfg: SynthConfig) -> Scene:
    """Gypsum board(s) with taping seams (or none, for negatives) and their box labels."""
    scale = float(np.sqrt(h * w)) / 640  # python float: keeps the float32 pipeline float32
    img = gypsum(rng, h, w, scale, random_wall_colour(rng, "gypsum"))
    ys, xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]  # (h, 1), (1, w)
    region = board_region(rng, h, w)
    n_seams = 0 if rng.random() < cfg.negative_fraction else (1 if rng.random() < 0.7 else 2)
    rects, studs = [], []
    first_vertical = rng.random() < 0.6
    for k in range(n_seams):
        vertical = first_vertical if k == 0 else bool(rng.random() < 0.5)
        across, extent = seam_geometry(rng, h, w, vertical)
        if studs and vertical == first_vertical and abs(across - studs[0][1]) < 0.25 * (w if vertical else h):
            across = (across + 0.5 * (w if vertical else h)) % (w if vertical else h)
        dist, along = (xs - across, ys) if vertical else (ys - across, xs)
        half = draw_seam(rng, img, dist, along, extent, scale)
        if rng.random() < 0.4:
            length = int(extent[1] - extent[0])
            ink = board_text(rng, max(length, 20), scale)
            ink_strength = rng.uniform(0.35, 0.7)
            off = int(across + rng.choice([-1, 1]) * (half + rng.uniform(4, 18) * scale))
            paint_ink(img, ink if not vertical else np.rot90(ink, 1), off, int(extent[0]), vertical, ink_strength)
        margin = rng.uniform(6, 35) * scale
        on_board = board_extent(region, vertical, across, half + 4 * scale, extent)
        if on_board is None:
            continue
        e0, e1 = on_board
        r = half + margin
        rect = [[across - r, e0], [across + r, e0], [across + r, e1], [across - r, e1]]
        rects.append(np.array(rect if vertical else [p[::-1] for p in rect], np.float64))
        studs.append((vertical, across))
    if rng.random() < 0.5:
        spacing = rng.uniform(0.25, 0.45) * w
        studs_v = [(True, x) for x in np.arange(rng.uniform(0, spacing), w, spacing)]
        screws(rng, img, studs_v + [(v, a + (12 if v else 12) * scale) for v, a in studs], scale)
    if region.min() < 1:
        back = floor(rng, h, w, scale)
        img = img * region[..., None] + back * (1 - region[..., None])
        edge = cv2.GaussianBlur(region, (0, 0), 2.0 * scale)
        img *= (1 - 0.4 * np.clip(np.abs(edge - region) * 4, 0, 1))[..., None]
    scene = Scene(image=finish_lighting(rng, img, scale, stain_rate=0.1))
    if rng.random() < cfg.rotate_fraction:
        _, rects = rotate_scene(rng, scene, None, rects)
    if rng.random() < cfg.cutout_fraction:
        cutouts(rng, scene.image, scale)
    scene.boxes = [b for b in (clip_box(r, w, h) for r in rects) if b is not None]
    return scene


def board_extent(
    region: np.ndarray, vertical: bool, across: float, half: float, extent: tuple[float, float]
) -> tuple[float, float] | None:
    """The part of a seam's along-extent whose whole width lies on the board (not the floor), or None."""
    h, w = region.shape
    lines = []
    for a in (across - half, across, across + half):
        lines.append(region[:, int(np.clip(a, 0, w - 1))] if vertical else region[int(np.clip(a, 0, h - 1)), :])
    idx = np.flatnonzero(np.min(lines, axis=0) > 0.5)
    idx = idx[(idx >= extent[0]) & (idx <= extent[1])]
    if len(idx) < 4:
        return None
    return float(idx[0]), float(idx[-1] + 1)


def paint_ink(img: np.ndarray, ink: np.ndarray, across: int, along0: int, vertical: bool, strength: float) -> None:
    """Darken `img` by an ink strip placed beside a seam (in place, clipped to the image)."""
    h, w = img.shape[:2]
    ih, iw = ink.shape
    y0, x0 = (max(along0, 0), across - iw // 2) if vertical else (across - ih // 2, max(along0, 0))
    ya, xa = max(y0, 0), max(x0, 0)
    yb, xb = min(y0 + ih, h), min(x0 + iw, w)
    if ya >= yb or xa >= xb:
        return
    patch = ink[ya - y0 : yb - y0, xa - x0 : xb - x0]
    img[ya:yb, xa:xb] *= (1 - strength * patch)[..., None]


def clip_box(corners: np.ndarray, w: int, h: int) -> Box | None:
    """Axis-aligned box around (rotated) seam corners, clipped to the image; None if it falls outside."""
    x0, y0 = np.clip(corners.min(0), 0, [w, h])
    x1, y1 = np.clip(corners.max(0), 0, [w, h])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return float(x0), float(y0), float(x1), float(y1)


# ---------------------------------------------------------------- dataset writing


def image_rng(seed: int, cls: str, split: str, index: int) -> np.random.Generator:
    """The generator for one image: independent of how many images other splits have."""
    return np.random.default_rng([seed, CLASS_INDEX[cls], SPLITS.index(split), index])


def image_shape(rng: np.random.Generator, cfg: SynthConfig) -> tuple[int, int]:
    """(h, w): 640x640 like Roboflow exports, or a random size within cfg.size_range."""
    lo, hi = cfg.size_range
    if rng.random() < cfg.square_fraction and lo <= 640 <= hi:
        return 640, 640
    return int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))


def make_scene(cls: str, rng: np.random.Generator, cfg: SynthConfig) -> Scene:
    """One synthetic photo of class `cls` with pixel-space labels."""
    h, w = image_shape(rng, cfg)
    return crack_scene(rng, h, w, cfg) if cls == "crack" else drywall_scene(rng, h, w, cfg)


def yolo_shapes(scene: Scene) -> list:
    """The scene's labels as normalised YOLO shapes (class id 0, like the single-class exports)."""
    h, w = scene.image.shape[:2]
    shapes = [YoloShape(0, "polygon", (p / [w, h]).astype(np.float64)) for p in scene.polygons]
    for x0, y0, x1, y1 in scene.boxes:
        box = np.array([(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h])
        shapes.append(YoloShape(0, "box", box))
    return shapes


def write_sample(scene: Scene, rng: np.random.Generator, cfg: SynthConfig, image_path: Path, label_path: Path) -> None:
    """Save the scene as JPEG at a random quality and its YOLO label file."""
    pixels = camera(rng, scene.image)
    save_rgb(pixels, image_path, quality=int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    write_yolo_file(label_path, yolo_shapes(scene))


def prepare_root(root: Path, overwrite: bool) -> None:
    """Refuse to mix with an existing dataset unless overwrite, then clear its split folders."""
    existing = [root / s for s in SPLITS if (root / s).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{root} already holds {', '.join(p.name for p in existing)}; pass --overwrite to replace it")
    for path in existing:
        shutil.rmtree(path)


def generate(
    out: Path,
    seed: int = 0,
    counts: dict[str, int] | None = None,
    config: SynthConfig | None = None,
    overwrite: bool = False,
    classes: tuple[str, ...] = ("crack", "taping"),
) -> dict[str, Path]:
    """Write synthetic datasets under `out` (counts per split, missing splits at DEFAULT_COUNTS); returns the roots."""
    cfg = config or SynthConfig()
    counts = {**DEFAULT_COUNTS, **(counts or {})}
    unknown = sorted(set(counts) - set(SPLITS))
    if unknown or any(n < 0 for n in counts.values()):
        raise ValueError(f"synth counts {counts}: splits must be {SPLITS} with counts >= 0")
    lo, hi = cfg.size_range
    if not 32 <= lo <= hi:
        raise ValueError(f"synth size range {cfg.size_range}: need 32 <= min <= max")
    if not 0 <= cfg.negative_fraction <= 1:
        raise ValueError(f"synth negative fraction {cfg.negative_fraction}: need a share between 0 and 1")
    out = Path(out)
    roots = {cls: out / ROOT_NAMES[cls] for cls in classes}
    jobs = [(cls, split, i) for cls in classes for split in SPLITS for i in range(counts[split])]
    for root in roots.values():
        prepare_root(root, overwrite)
    start = time.perf_counter()
    for cls, split, i in progress_bar(jobs, desc="synth", unit="img", disable=len(jobs) < 50):
        rng = image_rng(seed, cls, split, i)
        scene = make_scene(cls, rng, cfg)
        stem = f"synth_{ROOT_NAMES[cls]}_{split}_{i:05d}"
        split_dir = roots[cls] / split
        write_sample(scene, rng, cfg, split_dir / "images" / f"{stem}.jpg", split_dir / "labels" / f"{stem}.txt")
    for root in roots.values():
        extract_masks(root, overwrite=True)
        info = {"generator": "textseg.data.synth", "seed": seed, "counts": counts, "config": cfg.__dict__}
        (root / "synth.json").write_text(json.dumps(info, indent=2) + "\n")
    logger.info("wrote %d synthetic images to %s in %.1f s", len(jobs), out, time.perf_counter() - start)
    return roots


# ---------------------------------------------------------------- comparison figure and CLI


def pick_positives(root: Path, cls: str, n: int, rng: np.random.Generator) -> list[tuple[Path, np.ndarray]]:
    """Up to n random (image, mask) pairs with a non-empty target from any split of a dataset root."""
    samples = [s for split in available_splits(root) for s in list_samples(root, split, cls)]
    picked: list[tuple[Path, np.ndarray]] = []
    for i in rng.permutation(len(samples)):
        target = load_target(samples[int(i)])
        if target.any():
            picked.append((samples[int(i)].image, target))
        if len(picked) == n:
            break
    if not picked:
        raise ValueError(f"{root}: no {cls} image with a non-empty mask to show")
    return picked


def compare_with_real(real_roots: dict[str, Path], synth_roots: dict[str, Path], out_png: Path, n: int = 4, seed: int = 0) -> Path:
    """Save a figure with rows real crack, synthetic crack, real drywall, synthetic drywall (mask outlines)."""
    rng = np.random.default_rng(seed)
    images, masks, titles = [], [], []
    for cls in ("crack", "taping"):
        for source, roots in (("real", real_roots), ("synthetic", synth_roots)):
            row = pick_positives(Path(roots[cls]), cls, n, rng)
            row += [row[-1]] * (n - len(row))
            for path, mask in row:
                images.append(path)
                masks.append(mask)
                titles.append(f"{source} {cls} {mask.shape[1]}x{mask.shape[0]}")
    credit = (
        "Rows 1 and 3: real photos from the Roboflow Universe datasets 'cracks' and 'Drywall-Join-Detect' (CC BY 4.0). "
        "Rows 2 and 4: textseg synth. Yellow: mask outlines."
    )
    image_grid(images, masks, titles, ncols=n, credit=credit, path=out_png, tile_size=2.6)
    return Path(out_png)
