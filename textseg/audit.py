"""Dataset audit: counts, unreadable files, mask checks, and copies or re-shots of one photo in two splits.

Pairs of related images come in two kinds: COPY, one photo augmented (flip, rotation, crop,
brightness: the same pixels under an affine map), and SAME_SCENE, another shot of the same scene
(a moment later, from a slightly different spot: many features match, but perspective and parallax
leave no affine map that aligns the pixels). Both leak an evaluation. They are found by content in
four stages (`find_photo_pairs`; `find_near_duplicates` keeps the copies):

1. Shortlist. Every image gets a small global descriptor (8x8 grayscale and log-gradient thumbnails
   over the pixels that are not black fill, contrast-normalised), computed for all 8 flips and
   90-degree rotations; the similarity of two images is the best of the 8. Second, a tf-idf bag of
   ORB words (k-means codebook of up to 1024 binary words, learnt on the images themselves, seeded),
   of the image and of its mirror image. Each query image (all images outside the largest group,
   usually valid/ and test/) keeps the `top_k` most similar images of the other groups under each of
   the two descriptors as candidates (chunked matrix products).
2. Verify. ORB keypoints on a `side` x `side` grayscale copy (CLAHE for the low-contrast boards),
   ratio-test matches of the query and of its mirror image to the candidate, then a RANSAC affine
   (`cv2.estimateAffine2D`: rotation, scale, shear, crop). A pair goes on when the transform is
   plausible (no reflection left, scales in [1/3, 3]) and keeps at least `min_inliers` matches.
3. Align. The candidate is warped onto the query with that affine, over the pixels both cover
   (rotation fill and cutouts excluded). Copies are the same pixels under an affine map; another
   shot of the same scene (a moment later, from a slightly different spot) matches many features
   too, but differs by perspective and parallax, which no affine map undoes. So a copy needs edge
   agreement (median gradient correlation of the textured blocks) of at least `min_alignment`, and
   local shifts (phase correlation of 32-px blocks) that one affine field explains to within
   `max_misfit` pixels (at 400 px): copies leave a few tenths of a pixel, other shots more. A pair
   of stage 2 that fails this check is another shot of the same scene.
4. Second pass. Plain, speckled boards give few ORB matches at `side` px, too few for stage 2. A
   query image left without a copy has its candidates that stage 2 found a plausible affine for
   (however few inliers) verified again, in the orientation (mirrored or not) found there, with more
   ORB features at `fine_side` px; the alignment is still checked at `side` px (its thresholds are
   set there), with the finer, more precise affine.
A pair found in both passes keeps the better kind (copy). A copy with less than `keep_ratio` of the
inliers of its images' best copies counts as another shot of the scene that aligns well enough to
ride along with the true copy.

The reported distance is 1 - inliers / min(keypoints of a, keypoints of b): about 0 for identical
files, close to 1 for pairs that share only a small part. Measured recall/precision and speed on
the real Roboflow sample: benchmarks/bench_audit.py (results in benchmarks/audit_results.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import cv2
import matplotlib.pyplot as plt
import numpy as np
from textseg.progress import progress_bar

from textseg.data import GROUPS_FILE, Sample, available_splits, detect_layout, list_samples, load_target, split_root_spec
from textseg.images import ImageReadError, atomic_path, is_image_file, load_image, save_json
from textseg.viz import save_figure

logger = logging.getLogger(__name__)

THUMB = 8  # side of the shortlist thumbnails
TINY_FRACTION = 0.001  # a non-empty mask below this foreground fraction is "tiny"
HIST_BINS = 20
COPY = "copy"  # one photo, augmented (flip, rotation, crop, colour): the same pixels under an affine map
SAME_SCENE = "same_scene"  # another shot of one scene: many features match, but no affine map aligns the pixels
KINDS = (COPY, SAME_SCENE)
_BLACK = 10  # gray level at or below which a pixel counts as rotation fill or cutout


@dataclass
class _Features:
    """Shortlist descriptor and ORB features of one image."""

    dihedral: np.ndarray  # (8, D) descriptor of the 8 flips/rotations, unit rows
    points: np.ndarray  # (K, 2) keypoint positions in the side x side image
    descriptors: np.ndarray | None  # (K, 32) uint8 ORB
    mirror_points: np.ndarray | None  # the same for the left-right mirrored image (query images only)
    mirror_descriptors: np.ndarray | None


def _read_gray(path: Path, side: int) -> np.ndarray | None:
    """Grayscale uint8 (side, side) copy of an image, or None if OpenCV cannot decode it."""
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if image is None:
        return None
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)


def _thumbnail(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(THUMB, THUMB) mean of `values` over valid pixels, centred and weighted by coverage."""
    side = values.shape[0]
    sigma = side / THUMB / 2
    num = cv2.resize(cv2.GaussianBlur(values * valid, (0, 0), sigma), (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    den = cv2.resize(cv2.GaussianBlur(valid, (0, 0), sigma), (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    thumb = num / np.maximum(den, 1e-3)
    weight = np.sqrt(np.clip(den, 0.0, 1.0))
    thumb = (thumb - (thumb * weight).sum() / max(weight.sum(), 1e-6)) * weight
    return thumb / (np.linalg.norm(thumb) + 1e-6)


def _dihedral_descriptor(gray: np.ndarray) -> np.ndarray:
    """(8, 2*THUMB*THUMB) shortlist descriptor of all flips/rotations of a gray image."""
    small = cv2.resize(gray, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    valid = cv2.erode((small > _BLACK / 255.0).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    thumbs = np.stack([_thumbnail(small, valid), _thumbnail(np.log1p(20.0 * np.sqrt(gx * gx + gy * gy)), valid)])
    variants = []
    for k in range(4):
        rotated = np.rot90(thumbs, k, axes=(1, 2))
        variants += [rotated, rotated[:, :, ::-1]]
    return np.stack(variants).reshape(8, -1) / np.sqrt(2.0)  # (8, 128)


def _orb(gray: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray | None]:
    """ORB keypoint positions (K, 2) and descriptors (K, 32) of a CLAHE-equalised gray image."""
    equalised = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(gray)
    keypoints, descriptors = cv2.ORB_create(n_features, fastThreshold=10).detectAndCompute(equalised, None)
    return np.float32([k.pt for k in keypoints]).reshape(-1, 2), descriptors


def _features(path: Path, side: int, n_features: int, mirror: bool) -> _Features | None:
    """Descriptor and ORB features of one image file (and of its mirror image); None if unreadable."""
    gray = _read_gray(path, side)
    if gray is None:
        return None
    points, descriptors = _orb(gray, n_features)
    mirror_points, mirror_descriptors = _orb(np.ascontiguousarray(gray[:, ::-1]), n_features) if mirror else (None, None)
    return _Features(_dihedral_descriptor(gray), points, descriptors, mirror_points, mirror_descriptors)


def _pair_features(files: list[Path], pairs: Mapping[tuple[int, int], bool], side: int, n_features: int,
                   pool: ThreadPoolExecutor) -> dict[int, _Features]:
    """{index: features at `side` px} of the images in {(query, candidate): mirrored}, with the mirror images needed."""
    mirror = {q for (q, _), mirrored in pairs.items() if mirrored}
    needed = sorted({k for pair in pairs for k in pair})
    loaded = pool.map(lambda i: _features(files[i], side, n_features, i in mirror), needed)
    return {i: f for i, f in zip(needed, loaded) if f is not None}


def _queries(groups: np.ndarray) -> np.ndarray:
    """Indices that search for copies: all but the largest group (its images are found from the others)."""
    labels, counts = np.unique(groups, return_counts=True)
    if len(labels) < 2 or counts.max() < 2:
        return np.arange(len(groups))
    return np.flatnonzero(groups != labels[np.argmax(counts)])


def _shortlist(similarity: Callable[[np.ndarray], np.ndarray], groups: np.ndarray, queries: np.ndarray, top_k: int,
               chunk: int = 512) -> dict[tuple[int, int], tuple[int, int]]:
    """{(i, j) with i < j: (query, candidate)}: each query's top_k most similar images of another group."""
    n = len(groups)
    pairs: dict[tuple[int, int], tuple[int, int]] = {}
    k = min(top_k, n - 1)
    if k <= 0:
        return pairs
    for start in range(0, len(queries), chunk):
        rows = queries[start:start + chunk]
        sims = similarity(rows)  # (C, N)
        sims[groups[rows][:, None] == groups[None, :]] = -np.inf  # same group (and self): not candidates
        best = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (C, k)
        for r, (row, cols) in enumerate(zip(rows, best)):
            for col in cols:
                if np.isfinite(sims[r, col]):
                    pairs.setdefault((min(row, col), max(row, col)), (int(row), int(col)))
    return pairs


def _thumbnail_similarity(dihedral: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """rows -> (C, N) best cosine over the 8 flips/rotations of the thumbnail descriptors."""
    n = len(dihedral)
    flat = dihedral.reshape(n * 8, -1)  # (N*8, D)
    return lambda rows: (dihedral[rows, 0] @ flat.T).reshape(len(rows), n, 8).max(axis=2)


def _bag_of_words(feats: list[_Features], seed: int, max_words: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """tf-idf bags of ORB words (N, K) of the images and of their mirror images (zeros where not computed)."""
    rng = np.random.default_rng(seed)
    pool = np.concatenate([f.descriptors for f in feats if f.descriptors is not None] or [np.zeros((0, 32), np.uint8)])
    if len(pool) < 64:
        return np.zeros((len(feats), 1), np.float32), np.zeros((len(feats), 1), np.float32)
    picked = np.unpackbits(pool[rng.choice(len(pool), min(len(pool), 40_000), replace=False)], axis=1)
    n_words = int(min(max_words, max(16, len(picked) // 40)))
    cv2.setRNGSeed(seed)
    _, _, centres = cv2.kmeans(picked.astype(np.float32), n_words, None, (cv2.TERM_CRITERIA_MAX_ITER, 10, 0), 1,
                               cv2.KMEANS_PP_CENTERS)
    words = np.packbits((centres > 0.5).astype(np.uint8), axis=1)  # (K, 32) binary word descriptors
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)

    def counts(descriptors: np.ndarray | None) -> np.ndarray:
        if descriptors is None or len(descriptors) == 0:
            return np.zeros(n_words, np.float32)
        ids = np.fromiter((m.trainIdx for m in matcher.match(descriptors, words)), dtype=np.int64)
        return np.bincount(ids, minlength=n_words).astype(np.float32)

    plain = np.stack([counts(f.descriptors) for f in feats])  # (N, K)
    mirror = np.stack([counts(f.mirror_descriptors) for f in feats])  # (N, K)
    idf = np.log(len(feats) / (1.0 + (plain > 0).sum(axis=0))).astype(np.float32)

    def weigh(h: np.ndarray) -> np.ndarray:
        h = np.sqrt(h) * idf
        return h / (np.linalg.norm(h, axis=1, keepdims=True) + 1e-9)

    return weigh(plain), weigh(mirror)


def _bow_similarity(plain: np.ndarray, mirror: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """rows -> (C, N) cosine of bags of words, the query or its mirror image (the larger)."""
    return lambda rows: np.maximum(plain[rows] @ plain.T, mirror[rows] @ plain.T)


def _plausible(affine: np.ndarray) -> bool:
    """True for an affine map without reflection and with scales between 1/3 and 3."""
    linear = affine[:, :2]
    scales = np.linalg.svd(linear, compute_uv=False)
    return bool(np.linalg.det(linear) > 0 and scales.min() > 1 / 3 and scales.max() < 3)


@dataclass
class _Match:
    """Best geometric match of a query image (or its mirror image) to a candidate."""

    inliers: int
    affine: np.ndarray | None  # (2, 3) map from query (mirrored if `mirrored`) to candidate pixels
    mirrored: bool


def _verify(a: _Features, b: _Features, side: int, mirrored: bool | None = None) -> _Match:
    """RANSAC affine inliers of ORB matches of a (or of a's mirror image) to b, the larger; `mirrored` tries one only."""
    best = _Match(0, None, False)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    for flip, points, descriptors in ((False, a.points, a.descriptors), (True, a.mirror_points, a.mirror_descriptors)):
        if mirrored not in (None, flip) or b.descriptors is None or descriptors is None or len(b.descriptors) < 2 \
                or len(descriptors) < 2:
            continue
        good = [m[0] for m in matcher.knnMatch(descriptors, b.descriptors, k=2)
                if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
        if len(good) < 6:
            continue
        src = points[[m.queryIdx for m in good]]
        dst = b.points[[m.trainIdx for m in good]]
        affine, mask = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=side / 100,
                                            maxIters=1000, confidence=0.99)
        if affine is not None and _plausible(affine) and int(mask.sum()) > best.inliers:
            best = _Match(int(mask.sum()), affine, flip)
    return best


def _gradients(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y Sobel gradients (float32) of a lightly smoothed gray image."""
    smooth = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), 1.0)
    return cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)


def _blocks(image: np.ndarray, block: int, step: int) -> np.ndarray:
    """(rows, cols, block, block) view of the block x block windows of an image every `step` pixels."""
    return np.lib.stride_tricks.sliding_window_view(image, (block, block))[::step, ::step]


def _edge_agreement(grads_a: tuple[np.ndarray, np.ndarray], grads_b: tuple[np.ndarray, np.ndarray], valid: np.ndarray,
                    block: int = 32) -> float:
    """Median gradient correlation over the most textured quarter (at least 3) of the mostly covered blocks."""
    weight = _blocks(valid.astype(np.float32), block, block)  # (R, C, block, block)
    count = 2 * weight.sum(axis=(2, 3))  # (R, C): x and y gradients of the covered pixels
    (ax, ay), (bx, by) = [[_blocks(g, block, block) for g in grads] for grads in (grads_a, grads_b)]

    def total(values: np.ndarray) -> np.ndarray:
        return (values * weight).sum(axis=(2, 3))  # (R, C)

    with np.errstate(divide="ignore", invalid="ignore"):
        mean_a, mean_b = (total(ax) + total(ay)) / count, (total(bx) + total(by)) / count
        std_a = np.sqrt(np.maximum((total(ax * ax) + total(ay * ay)) / count - mean_a ** 2, 0.0))
        std_b = np.sqrt(np.maximum((total(bx * bx) + total(by * by)) / count - mean_b ** 2, 0.0))
        covariance = (total(ax * bx) + total(ay * by)) / count - mean_a * mean_b
        texture = np.minimum(std_a, std_b)
        use = (count >= 0.8 * 2 * block * block) & (texture >= 1e-3)
        correlations = (covariance / (std_a * std_b))[use]
    if len(correlations) < 3:
        return 0.0
    order = np.argsort(texture[use])[::-1]
    return float(np.median(correlations[order[:max(3, len(order) // 4)]]))


def _shift_residual(edges_a: np.ndarray, edges_b: np.ndarray, valid: np.ndarray, block: int = 32) -> float:
    """Median misfit (pixels) of the local shifts between two aligned edge maps after the best affine correction.

    Each covered block (every block/2 pixels) of the more textured half gets its shift by phase
    correlation (kept when the peak is clear and the shift under block/4); an affine field of shifts
    is fitted (trimmed least squares) and the median distance of the shifts to it returned; inf when
    fewer than 6 blocks vote.
    """
    h, w = valid.shape
    step = block // 2
    covered = _blocks(valid.astype(np.float32), block, step).mean(axis=(2, 3))  # (R, C)
    texture = np.minimum(_blocks(edges_a, block, step).std(axis=(2, 3)), _blocks(edges_b, block, step).std(axis=(2, 3)))
    candidates = (covered >= 0.95) & (texture >= 1e-3)
    if candidates.sum() < 6:
        return float("inf")
    rows, cols = np.nonzero(candidates & (texture >= np.median(texture[candidates])))
    window = cv2.createHanningWindow((block, block), cv2.CV_32F)
    votes = []  # (x, y, dx, dy, response) of the block centres
    for r, c in zip(rows, cols):
        cell = (slice(r * step, r * step + block), slice(c * step, c * step + block))
        (dx, dy), response = cv2.phaseCorrelate(np.ascontiguousarray(edges_a[cell]), np.ascontiguousarray(edges_b[cell]),
                                                window)
        votes.append((c * step + block / 2, r * step + block / 2, dx, dy, response))
    x, y, dx, dy, response = np.asarray(votes).reshape(-1, 5).T
    keep = (response >= 0.2) & (np.hypot(dx, dy) < block / 4)
    if keep.sum() < 6:
        return float("inf")
    positions = np.stack([x[keep] / w, y[keep] / h, np.ones(int(keep.sum()))], axis=1)  # (M, 3)
    shifts = np.stack([dx[keep], dy[keep]], axis=1)  # (M, 2)
    fit = np.ones(len(shifts), bool)
    for _ in range(3):
        coefficients = np.linalg.lstsq(positions[fit], shifts[fit], rcond=None)[0]  # (3, 2)
        misfit = np.linalg.norm(shifts - positions @ coefficients, axis=1)
        fit = misfit <= max(3 * float(np.median(misfit)), 0.5)
    return float(np.median(misfit))


def _alignment(a: np.ndarray, b: np.ndarray, affine: np.ndarray) -> tuple[float, float]:
    """(edge agreement 0..1, local shift misfit in pixels) of b warped onto a by `affine`.

    Only pixels both images cover (not rotation fill or cutouts) count. Copies of one photo are the
    same pixels under an affine map: edges agree (near 1) and what shifts remain after the fit are
    the same everywhere (misfit well under a pixel). Another shot of the same scene, a moment later
    from a slightly different spot, differs by perspective and parallax, which no affine map undoes:
    the local shifts vary across the image.
    """
    h, w = a.shape
    warped = cv2.warpAffine(b, affine, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
    inside = cv2.warpAffine(np.ones_like(b), affine, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_NEAREST)
    valid = cv2.erode(((inside > 0) & (a > _BLACK) & (warped > _BLACK)).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    grads_a, grads_b = _gradients(a), _gradients(warped)
    agreement = _edge_agreement(grads_a, grads_b, valid)
    residual = _shift_residual(np.hypot(*grads_a), np.hypot(*grads_b), valid)
    return agreement, residual


def _pair_alignment(a: Path, b: Path, match: _Match, side: int) -> tuple[float, float]:
    """`_alignment` of the query file a (mirrored if matched so) and candidate file b under the match's affine."""
    gray_a, gray_b = _read_gray(a, side), _read_gray(b, side)
    if gray_a is None or gray_b is None or match.affine is None:
        return 0.0, float("inf")
    if match.mirrored:
        gray_a = np.ascontiguousarray(gray_a[:, ::-1])
    return _alignment(gray_a, gray_b, match.affine)


def _scaled(match: _Match, factor: float) -> _Match:
    """The match with its affine map expressed in images `factor` times the size."""
    if match.affine is None:
        return match
    affine = match.affine.copy()
    affine[:, 2] *= factor
    return _Match(match.inliers, affine, match.mirrored)


class _Pair(NamedTuple):
    """A verified pair: query and candidate indices, RANSAC inliers, the fewer keypoints of the two, and its kind."""

    i: int
    j: int
    inliers: int
    keypoints: int
    kind: str


class PhotoPair(NamedTuple):
    """Two files of one photo (kind COPY) or of one scene (kind SAME_SCENE); distance 0 for identical files."""

    a: Path
    b: Path
    distance: float
    kind: str


def _verify_all(feats: Mapping[int, _Features], pairs: Mapping[tuple[int, int], bool | None], side: int,
                pool: ThreadPoolExecutor) -> list[_Match]:
    """`_verify` of each {(query, candidate): mirrored or None for both} with the features `feats` at `side` px."""
    return list(progress_bar(pool.map(lambda item: _verify(feats[item[0][0]], feats[item[0][1]], side, item[1]), pairs.items()),
                     total=len(pairs), desc=f"verify candidates at {side} px", disable=len(pairs) < 500))


def _classify(files: list[Path], feats: Mapping[int, _Features], pairs: list[tuple[int, int]], matches: list[_Match],
              side: int, align_side: int, min_inliers: int, min_alignment: float, max_misfit: float,
              pool: ThreadPoolExecutor) -> list[_Pair]:
    """The pairs whose match (found at `side` px) has `min_inliers`: copies where the alignment check at `align_side` px
    passes, other shots of the same scene where it fails."""
    strong = [(ij, _scaled(m, align_side / side)) for ij, m in zip(pairs, matches) if m.inliers >= min_inliers]
    agreement = list(progress_bar(pool.map(lambda c: _pair_alignment(files[c[0][0]], files[c[0][1]], c[1], align_side), strong),
                          total=len(strong), desc="align pairs", disable=len(strong) < 200))
    return [_Pair(i, j, m.inliers, min(len(feats[i].points), len(feats[j].points)),
                  COPY if score >= min_alignment and misfit <= max_misfit * align_side / 400 else SAME_SCENE)
            for ((i, j), m), (score, misfit) in zip(strong, agreement)]


def _keep_strong(scored: Sequence[tuple[int, ...]], ratio: float) -> list[tuple[int, ...]]:
    """Pairs (i, j, inliers, ...) whose inliers are at least `ratio` of the best verified match of i or of j."""
    best: dict[int, int] = defaultdict(int)
    for i, j, n, *_ in scored:
        best[i] = max(best[i], n)
        best[j] = max(best[j], n)
    return [pair for pair in scored if pair[2] >= ratio * best[pair[0]] or pair[2] >= ratio * best[pair[1]]]


def _merge(found: Sequence[_Pair], keep_ratio: float) -> list[_Pair]:
    """One pair per two images (a copy if any pass found one); a copy below `keep_ratio` of the inliers of both its
    images' best copies is another shot of the scene riding along with the true copy."""
    unique: dict[frozenset[int], _Pair] = {}
    for pair in found:
        key = frozenset((pair.i, pair.j))
        if key not in unique or (pair.kind == COPY and unique[key].kind != COPY):
            unique[key] = pair
    copies = [p for p in unique.values() if p.kind == COPY]
    strong = set(_keep_strong(copies, keep_ratio))
    return [p if p.kind != COPY or p in strong else p._replace(kind=SAME_SCENE) for p in unique.values()]


def find_photo_pairs(
    paths: Sequence[str | Path],
    groups: Sequence[str] | None = None,
    top_k: int = 20,
    min_inliers: int = 12,
    min_alignment: float = 0.5,
    max_misfit: float = 0.8,
    side: int = 400,
    n_features: int = 500,
    fine_side: int = 640,
    fine_features: int = 1500,
    keep_ratio: float = 0.8,
    workers: int = 2,
    seed: int = 0,
) -> list[PhotoPair]:
    """Pairs of images that are copies of one photo or other shots of one scene: copies first, each kind best first.

    With `groups` (one label per path, e.g. the split), only pairs from different groups are
    compared. Query images without a confirmed copy get the candidates for which the first pass found
    a plausible affine map verified again with `fine_features` ORB features at `fine_side` px (0: no
    second pass). Unreadable files are skipped with a warning (the audit lists them).
    """
    paths = [Path(p) for p in paths]
    labels = np.asarray(list(groups) if groups is not None else [str(i) for i in range(len(paths))])
    if len(labels) != len(paths):
        raise ValueError(f"find_photo_pairs: {len(paths)} paths but {len(labels)} group labels")
    is_query = np.zeros(len(paths), bool)
    is_query[_queries(labels)] = True
    with ThreadPoolExecutor(max(1, workers)) as pool:
        loaded = list(progress_bar(pool.map(lambda i: _features(paths[i], side, n_features, bool(is_query[i])), range(len(paths))),
                           total=len(paths), desc="duplicate features", disable=len(paths) < 200))
    for path, feats in zip(paths, loaded):
        if feats is None:
            logger.warning("%s: cannot decode image, skipped in the duplicate search", path)
    index = [i for i, f in enumerate(loaded) if f is not None]
    if len(index) < 2:
        return []
    feats = [loaded[i] for i in index]
    queries = np.flatnonzero(is_query[index])
    candidates = _shortlist(_thumbnail_similarity(np.stack([f.dihedral for f in feats])), labels[index], queries, top_k)
    candidates.update(_shortlist(_bow_similarity(*_bag_of_words(feats, seed)), labels[index], queries, top_k))
    candidates = sorted(candidates.values())  # (query, candidate) index pairs
    files = [paths[i] for i in index]
    checks = {"min_inliers": min_inliers, "min_alignment": min_alignment, "max_misfit": max_misfit}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        coarse = dict(enumerate(feats))
        matches = _verify_all(coarse, dict.fromkeys(candidates), side, pool)
        found = _classify(files, coarse, candidates, matches, side, side, **checks, pool=pool)
        matched = {k for pair in found if pair.kind == COPY for k in (pair.i, pair.j)}
        retry = {ij: m.mirrored for ij, m in zip(candidates, matches) if m.affine is not None and ij[0] not in matched}
        if fine_side and retry:  # queries without a copy: candidates with some geometric support, in finer detail
            fine = _pair_features(files, retry, fine_side, fine_features, pool)
            retry = {(q, c): mirrored for (q, c), mirrored in retry.items() if q in fine and c in fine}
            found += _classify(files, fine, list(retry), _verify_all(fine, retry, fine_side, pool), fine_side, side,
                               **checks, pool=pool)
    result = [PhotoPair(files[min(p.i, p.j)], files[max(p.i, p.j)], round(1.0 - p.inliers / max(p.keypoints, 1), 4), p.kind)
              for p in _merge(found, keep_ratio)]
    return sorted(result, key=lambda r: (KINDS.index(r.kind), r.distance, str(r.a), str(r.b)))


def find_near_duplicates(paths: Sequence[str | Path], groups: Sequence[str] | None = None,
                         **options: Any) -> list[tuple[Path, Path, float]]:
    """Pairs (a, b, distance) of images that are copies of one photo, best first (`find_photo_pairs`' copies)."""
    return [(p.a, p.b, p.distance) for p in find_photo_pairs(paths, groups, **options) if p.kind == COPY]


# ----------------------------------------------------------------------------- dataset audit

SPLIT_ORDER = {"train": 0, "valid": 1, "test": 2}


def parse_roots(roots: Sequence[str | Path] | dict[str, str | Path]) -> list[tuple[str | None, Path]]:
    """[(class, root)] from a {class: root} dict or ROOT / CLASS=ROOT items; a plain ROOT's class is what its folder
    name tells, else None (an audit of copies and files needs no class)."""
    items = [f"{cls}={root}" for cls, root in roots.items()] if isinstance(roots, dict) else list(roots)
    out = []
    for item in items:
        cls, path = split_root_spec(item)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such dataset root")
        out.append((cls, path))
    return out


def _image_files(split_dir: Path) -> list[Path]:
    """Image files of a split whatever its layout (images/ or the split folder itself)."""
    folder = split_dir / "images" if (split_dir / "images").is_dir() else split_dir
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p) and not p.name.startswith("."))


def _check_sample(sample: Sample) -> dict[str, Any]:
    """Readability, sizes and foreground fraction of one sample."""
    record: dict[str, Any] = {"image": str(sample.image)}
    try:
        image = load_image(sample.image)
    except ImageReadError as exc:
        return {**record, "unreadable": str(exc)}
    record["size"] = [int(image.shape[1]), int(image.shape[0])]
    if sample.mask is None and sample.label is None and sample.coco is None:
        return record
    try:
        target = load_target(sample)
    except (ImageReadError, ValueError) as exc:
        return {**record, "unreadable": str(exc)}
    record["mask_size"] = [int(target.shape[1]), int(target.shape[0])]
    record["foreground"] = float(target.mean())
    return record


def _audit_split(root: Path, split: str, cls: str | None, workers: int) -> tuple[dict[str, Any], list[Path]]:
    """Report of one split and its image paths."""
    split_dir = root / split
    report: dict[str, Any] = {"layout": None, "error": None}
    try:
        report["layout"] = detect_layout(split_dir)
        samples = list_samples(root, split, cls)
    except ValueError as exc:  # DatasetError: unpaired files, unknown layout, no images
        report["error"] = str(exc)
        masks = {m.stem: m for m in _image_files(split_dir / "masks")} if (split_dir / "masks").is_dir() else {}
        samples = [Sample(p, masks.get(p.stem), cls, split, root) for p in _image_files(split_dir)]  # audit what pairs
    with ThreadPoolExecutor(max(1, workers)) as pool:
        records = list(progress_bar(pool.map(_check_sample, samples), total=len(samples), desc=f"audit {root.name}/{split}",
                            disable=len(samples) < 200))
    fractions = [r["foreground"] for r in records if "foreground" in r]
    report.update({
        "images": len(samples),
        "masks": len(fractions),
        "unreadable": [{"file": r["image"], "error": r["unreadable"]} for r in records if "unreadable" in r],
        "size_mismatches": [{"image": r["image"], "image_size": r["size"], "mask_size": r["mask_size"]}
                            for r in records if "mask_size" in r and r["mask_size"] != r["size"]],
        "empty_masks": [r["image"] for r in records if r.get("foreground") == 0.0],
        "tiny_masks": [r["image"] for r in records if 0.0 < r.get("foreground", 0.0) < TINY_FRACTION],
        "foreground_fractions": fractions,
    })
    readable = [s.image for s, r in zip(samples, records) if "size" in r]
    return report, readable


def _histogram(fractions: list[float]) -> dict[str, list]:
    """Foreground-fraction histogram over [0, 1] in HIST_BINS bins."""
    counts, edges = np.histogram(np.asarray(fractions, dtype=float), bins=HIST_BINS, range=(0.0, 1.0))
    return {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]}


def report_groups(report: Mapping[str, Any], kinds: Sequence[str] = KINDS) -> list[set[Path]]:
    """Files that must stay on one side of a split (`textseg.data.collect_split`'s groups): each reported pair of `kinds`.

    The audit compares files of different splits only: for a root with train/ alone, pairs from
    `find_photo_pairs` over its files (`{a, b}` of each) serve the same purpose. Reports written
    before pairs had a kind count their pairs as copies.
    """
    return [{Path(p["a"]), Path(p["b"])} for p in report["cross_split_duplicates"] if p.get("kind", COPY) in kinds]


def write_photo_groups(root: str | Path, workers: int = 2, **options: Any) -> Path:
    """Search the train images of a root for copies and other shots of one scene (any names) and write them to
    ROOT/photo_groups.json, which every validation carve of the root then keeps on one side (textseg.data)."""
    root = Path(root)
    paths = [s.image for s in list_samples(root, "train", "crack")]  # the class does not matter for the search
    pairs = find_photo_pairs(paths, workers=workers, **options)
    rows = [{"a": str(p.a.relative_to(root)), "b": str(p.b.relative_to(root)), "kind": p.kind, "distance": p.distance}
            for p in pairs]
    save_json({"pairs": rows}, root / GROUPS_FILE, indent=1)
    logger.info("%s: %d copies and %d other shots of one scene among %d train images", root,
                sum(p.kind == COPY for p in pairs), sum(p.kind != COPY for p in pairs), len(paths))
    return root / GROUPS_FILE


def _ordered(a: Path, b: Path, split_of: dict[Path, str]) -> tuple[Path, Path]:
    """The pair with the earlier split (train < valid < test) first."""
    def rank(p: Path) -> tuple[int, str]:
        return SPLIT_ORDER.get(split_of[p], len(SPLIT_ORDER)), str(p)

    return (a, b) if rank(a) <= rank(b) else (b, a)


def audit(
    roots: Sequence[str | Path] | dict[str, str | Path],
    duplicates: bool = True,
    workers: int = 2,
    **duplicate_options: Any,
) -> dict[str, Any]:
    """Audit dataset roots: counts, unreadable files, mask sizes, empty/tiny masks, cross-split copies and re-shots.

    Each cross-split pair has a kind: COPY (one photo, augmented) or SAME_SCENE (another shot of the
    scene). `leaked` counts, per later split, the files with a pair of either kind in an earlier
    split (what `dedupe` drops); `leaked_by_kind` splits them by kind.
    """
    report: dict[str, Any] = {"roots": [], "cross_split_duplicates": [], "tiny_fraction": TINY_FRACTION}
    for cls, root in parse_roots(roots):
        entry: dict[str, Any] = {"root": str(root), "class": cls, "splits": {}}
        paths, split_of = [], {}
        for split in available_splits(root):
            split_report, images = _audit_split(root, split, cls, workers)
            entry["splits"][split] = split_report
            paths += images
            split_of.update({p: split for p in images})
        fractions = [f for s in entry["splits"].values() for f in s.pop("foreground_fractions")]
        entry["foreground_histogram"] = _histogram(fractions)
        pairs = []
        if duplicates and len(entry["splits"]) > 1:
            found = find_photo_pairs(paths, [split_of[p] for p in paths], workers=workers, **duplicate_options)
            for a, b, distance, kind in found:
                a, b = _ordered(a, b, split_of)
                pairs.append({"a": str(a), "b": str(b), "distance": distance, "kind": kind, "split_a": split_of[a],
                              "split_b": split_of[b], "class": cls, "root": str(root)})
        later = [split for split in entry["splits"] if split != "train"]
        entry["leaked"] = {split: len({p["b"] for p in pairs if p["split_b"] == split}) for split in later}
        entry["leaked_by_kind"] = {kind: {split: len({p["b"] for p in pairs if p["split_b"] == split and p["kind"] == kind})
                                          for split in later} for kind in KINDS}
        report["cross_split_duplicates"] += pairs
        report["roots"].append(entry)
    return report


# ----------------------------------------------------------------------------- leak-free copy

def _is_inside(path: Path, folder: Path) -> bool:
    """True if path is folder or lies under it."""
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def dedupe(root: str | Path, out_dir: str | Path, report: dict[str, Any]) -> Path:
    """Copy a dataset root to out_dir without the files of later splits that have a copy or another shot of their scene
    in an earlier one.

    For each cross-split pair of this root, of either kind, the file of the later split (train <
    valid < test) is dropped with its mask and label; a COCO json is filtered to the kept images. The
    source is never modified. Returns out_dir.
    """
    root, out_dir = Path(root), Path(out_dir)
    if _is_inside(out_dir, root) or _is_inside(root, out_dir):
        raise ValueError(f"--dedupe-to {out_dir}: must lie outside the dataset root {root} (and not contain it)")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"--dedupe-to {out_dir}: folder exists and is not empty; choose a new folder")
    pairs = [p for p in report["cross_split_duplicates"] if _is_inside(Path(p["b"]), root) and _is_inside(Path(p["a"]), root)]
    dropped = {Path(p["b"]).resolve() for p in pairs}
    dropped_stems = {(d.relative_to(root.resolve()).parts[0], d.stem) for d in dropped}
    for source in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = source.relative_to(root)
        target = out_dir / relative
        if source.resolve() in dropped:
            continue
        if len(relative.parts) == 3 and relative.parts[1] in ("masks", "labels") and \
                (relative.parts[0], source.stem) in dropped_stems:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.name == "_annotations.coco.json":
            _write_filtered_coco(source, target, {d.name for d in dropped if d.parent == source.parent.resolve()})
        else:
            shutil.copy2(source, target)
    logger.info("%s -> %s: %d leaked files dropped (%d with a copy, %d with another shot of the scene)", root, out_dir,
                len(dropped), len({p["b"] for p in pairs if p.get("kind", COPY) == COPY}),
                len({p["b"] for p in pairs if p.get("kind", COPY) == SAME_SCENE}))
    return out_dir


def _write_filtered_coco(source: Path, target: Path, drop_names: set[str]) -> None:
    """Write a COCO json without the images named in drop_names and their annotations."""
    data = json.loads(source.read_text())
    drop_ids = {im["id"] for im in data.get("images", []) if im.get("file_name") in drop_names}
    data["images"] = [im for im in data.get("images", []) if im["id"] not in drop_ids]
    data["annotations"] = [a for a in data.get("annotations", []) if a.get("image_id") not in drop_ids]
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(data))


# ----------------------------------------------------------------------------- summary, figure, CLI

def summary(report: dict[str, Any]) -> str:
    """Human-readable text summary of an audit report."""
    lines = []
    for entry in report["roots"]:
        lines.append(f"{entry['root']} ({entry['class'] or 'class not given'})")
        for split, s in entry["splits"].items():
            lines.append(f"  {split:5s} {s['layout'] or '?':5s} images {s['images']:6d}  masks {s['masks']:6d}  "
                         f"unreadable {len(s['unreadable'])}  size mismatches {len(s['size_mismatches'])}  "
                         f"empty {len(s['empty_masks'])}  tiny {len(s['tiny_masks'])}")
            if s["error"]:
                first, *rest = s["error"].splitlines()
                lines.append(f"        error: {first}")
                lines += [f"          {line.strip()}" for line in rest[:10]]
                if len(rest) > 10:
                    lines.append(f"          ... and {len(rest) - 10} more (see the JSON report)")
            for bad in s["unreadable"][:5]:
                lines.append(f"        unreadable: {bad['error']}")
        for kind, what in ((COPY, "a copy"), (SAME_SCENE, "another shot of the scene")):
            leaked = ", ".join(f"{split} {n}" for split, n in entry["leaked_by_kind"][kind].items()) or "no other split"
            lines.append(f"  files with {what} in an earlier split: {leaked}")
    pairs = report["cross_split_duplicates"]
    counts = ", ".join(f"{kind} {sum(p['kind'] == kind for p in pairs)}" for kind in KINDS)
    lines.append(f"cross-split duplicate pairs: {len(pairs)} ({counts})")
    for p in pairs[:20]:
        lines.append(f"  {p['kind']:10s}  {p['split_a']}/{Path(p['a']).name}  ~  {p['split_b']}/{Path(p['b']).name}  "
                     f"({p['distance']:.3f})")
    if len(pairs) > 20:
        lines.append(f"  ... and {len(pairs) - 20} more (see the JSON report)")
    return "\n".join(lines)


def figure_pairs(pairs: Sequence[Mapping[str, Any]], max_pairs: int) -> list[Mapping[str, Any]]:
    """Up to max_pairs pairs to show, both kinds alike (half each where both have enough), best first within a kind."""
    by_kind = [[p for p in pairs if p["kind"] == kind] for kind in KINDS]
    alternating = [p for row in zip_longest(*by_kind) for p in row if p is not None]  # copy, same scene, copy, ...
    return sorted(alternating[:max_pairs], key=lambda p: KINDS.index(p["kind"]))


def pair_label(pair: Mapping[str, Any]) -> str:
    """Kind and distance of a reported pair, as the figure shows it."""
    return f"{'copy' if pair['kind'] == COPY else 'same scene'}, distance {pair['distance']:.3f}"


def audit_figure(report: dict[str, Any], path: str | Path, max_pairs: int = 4, title: str | None = None) -> Path:
    """Save counts per split and class, foreground histograms and a few duplicate pairs to a PNG."""
    pairs = figure_pairs(report["cross_split_duplicates"], max_pairs)
    rows = 1 + len(pairs)
    fig = plt.figure(figsize=(10, 3.2 * rows))
    grid = fig.add_gridspec(rows, 2)
    ax = fig.add_subplot(grid[0, 0])
    names = [f"{e['class'] or '?'}\n{Path(e['root']).name}" for e in report["roots"]]
    for k, split in enumerate(SPLIT_ORDER):
        counts = [e["splits"].get(split, {}).get("images", 0) for e in report["roots"]]
        ax.bar(np.arange(len(names)) + (k - 1) * 0.27, counts, width=0.27, label=split)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel("images")
    ax.set_title("images per split")
    ax.legend()
    ax = fig.add_subplot(grid[0, 1])
    for e in report["roots"]:
        hist = e["foreground_histogram"]
        ax.stairs(hist["counts"], hist["edges"], label=e["class"] or Path(e["root"]).name)
    ax.set_xlabel("foreground fraction of the mask")
    ax.set_ylabel("masks")
    ax.set_title("foreground fraction")
    ax.legend()
    for row, pair in enumerate(pairs, start=1):
        for col, key in enumerate(("a", "b")):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(load_image(pair[key]))
            ax.set_title(f"{pair['split_' + key]}: {Path(pair[key]).name[:40]}", fontsize=8)
            ax.axis("off")
        fig.axes[-1].text(-0.05, 0.5, pair_label(pair), transform=fig.axes[-1].transAxes,
                          ha="center", va="center", rotation=90, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    plt.close(save_figure(fig, path, dpi=80))
    return Path(path)


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `textseg audit`."""
    parser.add_argument("roots", nargs="+", metavar="ROOT", help="dataset root, or CLASS=ROOT (crack=data/cracks)")
    parser.add_argument("--json", type=Path, default=None, help="write the full report here")
    parser.add_argument("--figure", type=Path, default=None, help="write a PNG: counts, foreground, duplicate pairs")
    parser.add_argument("--dedupe-to", type=Path, default=None, metavar="DIR",
                        help="write a leak-free copy of each root to DIR/<root name>: later-split files with a copy "
                             "or another shot of the scene in an earlier split dropped")
    parser.add_argument("--no-duplicates", action="store_true", help="skip the cross-split duplicate search")
    parser.add_argument("--photo-groups", action="store_true",
                        help=f"also search the train images of each root for copies and re-shots and write ROOT/{GROUPS_FILE}: "
                             "validation carves from train then keep them on one side")
    parser.add_argument("--top-k", type=int, default=20, help="candidates per image and shortlist descriptor (default 20)")
    parser.add_argument("--min-inliers", type=int, default=12,
                        help="geometric matches that make a copy or another shot of the scene (default 12)")
    parser.add_argument("--min-alignment", type=float, default=0.5,
                        help="edge agreement of the aligned pair that makes a copy, 0..1 (default 0.5)")
    parser.add_argument("--max-misfit", type=float, default=0.8,
                        help="local shifts left after the affine fit, pixels at 400 px, above which a pair is "
                             "another shot of the scene, not a copy (default 0.8)")
    parser.add_argument("--workers", type=int, default=2, help="threads (default 2)")


def run_cli(args: argparse.Namespace) -> int:
    """Run the audit, print the summary, write JSON / figure / deduplicated copies."""
    if args.dedupe_to is not None and args.no_duplicates:
        raise ValueError("--dedupe-to needs the duplicate search; drop --no-duplicates")
    report = audit(args.roots, duplicates=not args.no_duplicates, workers=args.workers, top_k=args.top_k,
                   min_inliers=args.min_inliers, min_alignment=args.min_alignment,
                   max_misfit=args.max_misfit)
    print(summary(report))
    if args.photo_groups:
        for _, root in parse_roots(args.roots):
            print(f"photo groups: {write_photo_groups(root, workers=args.workers)}")
    if args.json is not None:
        save_json(report, args.json, indent=1)
        print(f"report: {args.json}")
    if args.figure is not None:
        print(f"figure: {audit_figure(report, args.figure)}")
    if args.dedupe_to is not None:
        names = [Path(e["root"]).name for e in report["roots"]]
        for i, entry in enumerate(report["roots"]):
            name = Path(entry["root"]).name
            if names.count(name) > 1:  # roots of one folder name: their copies are told apart by class and position
                name = f"{entry['class'] or name}-{i}"
            print(f"leak-free copy: {dedupe(entry['root'], args.dedupe_to / name, report)}")
    broken = [f"{e['root']}/{split}" for e in report["roots"] for split, s in e["splits"].items() if s["error"]]
    if broken:
        raise ValueError(f"{len(broken)} split(s) cannot be read as a dataset ({', '.join(broken)}); see the errors above")
    return 0
