"""Copies and re-shots of one photo among images: the search the audit, the photo groups and the benchmark use.

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

import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import cv2
import numpy as np

from textseg.progress import progress_bar


logger = logging.getLogger(__name__)

THUMB = 8  # side of the shortlist thumbnails
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


