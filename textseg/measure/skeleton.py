"""A defect's centre line: thinning, tracing into branches between nodes, pruning spurs and pinhole loops,
and the geometry read along it (polyline lengths, normals, sub-pixel ridge widths)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree
from skimage.morphology import skeletonize

OFFSETS: tuple[tuple[int, int], ...] = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
STEP_PX = 6  # polyline vertex spacing along the centre line: long enough to average out digital staircases
_SPUR_FACTOR = 1.5  # an end branch shorter than this many local half-widths is a skeletonization artefact
_TANGENT_PX = 3  # the centre line's direction at a pixel comes from the pixels this far along it either way
_COARSE_DEPTH = 4.0  # median distance to the edge (px) from which a defect is thinned at half resolution: ~16 px wide
_SNAP_PX = 2  # how far across the defect a centre line found at half resolution is moved onto the ridge (_snap)
_END_SLOPE = 0.5  # depth gained per pixel along a half-resolution line's end that marks it as running into a corner


def centre_line(closed: np.ndarray, dist: np.ndarray) -> Skeleton:
    """The pruned centre line of a bool crop (with a background frame) whose distance transform is `dist`."""
    skel_img, coarse = _thin(closed, dist)
    skel = _trace(skel_img, dist)
    if coarse:
        _snap(skel, dist)
    _prune(skel)
    if coarse:
        _trim_ends(skel)
    return skel


def _thin(closed: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, bool]:
    """The skeleton of `closed` (bool, one pixel wide), and whether it was found at half resolution.

    Zhang-Suen thinning sweeps the whole box once per pixel of half-width, so a wide defect's cost is its box
    times its half-width. A wide one (_COARSE_DEPTH) is thinned at half resolution instead, with a 2x2 block set
    where any of its pixels is (no thin part breaks); that skeleton, drawn back 2 px wide, is thinned once more at
    full resolution. About a tenth of the work; the line then lies up to about 2 px off the ridge (see _snap).
    """
    if np.median(dist[dist > 0]) < _COARSE_DEPTH:
        return skeletonize(closed), False
    h, w = closed.shape
    even = np.pad(closed, ((0, h % 2), (0, w % 2)))
    small = even.reshape(even.shape[0] // 2, 2, even.shape[1] // 2, 2).any(axis=(1, 3))
    drawn = np.repeat(np.repeat(skeletonize(small), 2, axis=0), 2, axis=1)[:h, :w]
    return skeletonize(drawn), True


def _snap(skel: Skeleton, dist: np.ndarray) -> None:
    """Move each centre-line pixel onto the ridge: to the deepest pixel within _SNAP_PX across the defect (a node
    pixel: within _SNAP_PX in any direction); then update depths and branch lengths."""
    coords = skel.coords.copy()
    paths = [np.asarray(b.path, dtype=np.int64) for b in skel.branches]
    if paths:
        index, normal, _ = normals(skel.coords, paths)
        chain = skel.cluster[index] < 0
        index, normal = index[chain], normal[chain]
        start = skel.coords[index].astype(float)
        best = dist[skel.coords[index, 0], skel.coords[index, 1]]
        for step in range(-_SNAP_PX, _SNAP_PX + 1):
            moved = np.clip(np.rint(start + step * normal).astype(np.int64), 0, np.array(dist.shape) - 1)
            depth = dist[moved[:, 0], moved[:, 1]]
            deeper = depth > best
            coords[index[deeper]], best[deeper] = moved[deeper], depth[deeper]
    for p in np.flatnonzero(skel.cluster >= 0):
        r, c = skel.coords[p]
        window = dist[max(r - _SNAP_PX, 0) : r + _SNAP_PX + 1, max(c - _SNAP_PX, 0) : c + _SNAP_PX + 1]
        dr, dc = np.unravel_index(np.argmax(window), window.shape)
        coords[p] = (max(r - _SNAP_PX, 0) + dr, max(c - _SNAP_PX, 0) + dc)
    skel.coords = coords
    skel.depth = dist[coords[:, 0], coords[:, 1]]
    for b in skel.branches:
        skel.measure(b)


def _trim_ends(skel: Skeleton) -> None:
    """Cut from each free end of a centre line found at half resolution the stretch that runs off the ridge into
    a corner: out to the farthest pixel (within the branch's first half) whose depth exceeds the tip's by more
    than _END_SLOPE per pixel along the line. A crack's taper rises far slower. The end's reach (_length) then
    measures on from where the line left. Thinned at full resolution, such a corner gets a fork that pruning
    removes; at half resolution it can get a single arm."""
    for node, branches in skel.attachments().items():
        if _degree(node, branches) != 1:
            continue
        branch = branches[0]
        path = np.asarray(branch.path if branch.a == node else branch.path[::-1])
        end = path[: max(len(path) // 2, 1)]
        along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(skel.coords[end], axis=0).T.astype(float)))])
        steep = np.flatnonzero(skel.depth[end] - skel.depth[end[0]] > _END_SLOPE * np.maximum(along, 1.0))
        if steep.size:
            kept = path[steep[-1] :].tolist()
            branch.path = kept if branch.a == node else kept[::-1]
            skel.measure(branch)



@dataclass(eq=False)
class Branch:
    """A centre-line chain of skeleton pixel indices from node a to node b; a = b = -1 for a closed loop."""

    path: list[int]
    a: int
    b: int
    length: float = 0.0

    def other(self, node: int) -> int:
        """The node at the other end from `node`."""
        return self.b if self.a == node else self.a


@dataclass
class Skeleton:
    """A traced centre line: pixel coordinates and depths, node clusters, branches, and lone points."""

    coords: np.ndarray  # (n, 2) row, col in the crop
    cluster: np.ndarray  # (n,) node of each node pixel (end point or junction), -1 for chain pixels
    depth: np.ndarray  # (n,) distance-transform value at each pixel
    branches: list[Branch]
    points: list[int] = field(default_factory=list)  # a pixel for each skeleton piece without a branch

    def attachments(self) -> dict[int, list[Branch]]:
        """Branches at each node (a loop at a node is listed once)."""
        out: dict[int, list[Branch]] = {}
        for b in self.branches:
            if b.a >= 0:
                out.setdefault(b.a, []).append(b)
                if b.b != b.a:
                    out.setdefault(b.b, []).append(b)
        return out

    def measure(self, branch: Branch) -> None:
        """Set a branch's polyline length."""
        branch.length = polyline_length(self.coords[branch.path], closed=branch.a < 0)

    def deepest(self, node: int) -> int:
        """The pixel of a node farthest from the background."""
        members = np.flatnonzero(self.cluster == node)
        return int(members[np.argmax(self.depth[members])])


def _degree(node: int, branches: list[Branch]) -> int:
    """Number of branch ends at a node (a loop there counts twice)."""
    return sum((b.a == node) + (b.b == node) for b in branches)


def _trace(skel_img: np.ndarray, dist: np.ndarray) -> Skeleton:
    """Split a skeleton into branches between nodes: clusters of pixels without exactly two neighbours."""
    if not skel_img.any():
        # A tiny blob can thin away entirely; its deepest pixel stands in for the centre line.
        skel_img = np.zeros_like(skel_img)
        skel_img[np.unravel_index(np.argmax(dist), dist.shape)] = True
    rows, cols = np.nonzero(skel_img)
    index = np.full(skel_img.shape, -1, dtype=np.int32)
    index[rows, cols] = np.arange(rows.size, dtype=np.int32)
    # The crop has a background frame, so every neighbour lookup stays inside it.
    table = np.stack([index[rows + dr, cols + dc] for dr, dc in OFFSETS], axis=1)
    neighbours = [[q for q in row if q >= 0] for row in table.tolist()]
    is_node = [len(nb) != 2 for nb in neighbours]
    cluster = _node_clusters(neighbours, is_node)
    visited = [False] * rows.size
    branches: list[Branch] = []
    for p in (i for i, node in enumerate(is_node) if node):
        for q in neighbours[p]:
            if not is_node[q] and not visited[q]:
                path = _walk(p, q, neighbours, is_node, visited)
                branches.append(Branch(path, int(cluster[path[0]]), int(cluster[path[-1]])))
    for s in range(rows.size):
        if not is_node[s] and not visited[s]:  # a closed loop with no node on it
            visited[s] = True
            path = _walk(s, neighbours[s][0], neighbours, is_node, visited, stop=s)
            branches.append(Branch(path[:-1], -1, -1))
    skel = Skeleton(np.stack([rows, cols], axis=1), cluster, dist[rows, cols], branches)
    for b in branches:
        skel.measure(b)
    touched = {n for b in branches for n in (b.a, b.b)}
    skel.points = [skel.deepest(n) for n in range(int(cluster.max()) + 1) if n not in touched]
    return skel


def _node_clusters(neighbours: list[list[int]], is_node: list[bool]) -> np.ndarray:
    """Number groups of touching node pixels: a junction can be a few adjacent pixels."""
    cluster = np.full(len(is_node), -1, dtype=np.int64)
    n = 0
    for start, node in enumerate(is_node):
        if not node or cluster[start] >= 0:
            continue
        cluster[start] = n
        stack = [start]
        while stack:
            p = stack.pop()
            for q in neighbours[p]:
                if is_node[q] and cluster[q] < 0:
                    cluster[q] = n
                    stack.append(q)
        n += 1
    return cluster


def _walk(
    start: int, first: int, neighbours: list[list[int]], is_node: list[bool], visited: list[bool], stop: int = -1
) -> list[int]:
    """Follow a chain of two-neighbour pixels from `start` through `first` to a node pixel (or `stop`)."""
    path = [start, first]
    prev, cur = start, first
    while not is_node[cur] and cur != stop:
        visited[cur] = True
        a, b = neighbours[cur]
        prev, cur = cur, (b if a == prev else a)
        path.append(cur)
    return path


def polyline_length(points: np.ndarray, closed: bool = False) -> float:
    """Length of a pixel chain as a polyline through vertices about STEP_PX apart, both ends kept."""
    # Counting pixel steps (1 or sqrt 2) over-estimates digital lines at most angles (~8% at 22.5 degrees);
    # vertices a few pixels apart follow the line itself, not its staircase.
    if closed:
        points = np.concatenate([points, points[:1]])
    n = len(points)
    if n < 2:
        return 0.0
    segments = max(3 if closed else 1, round((n - 1) / STEP_PX))  # a loop needs a triangle at least
    vertices = points[np.round(np.linspace(0, n - 1, segments + 1)).astype(int)].astype(float)
    steps = np.diff(vertices, axis=0)
    return float(np.hypot(steps[:, 0], steps[:, 1]).sum())


def _prune(skel: Skeleton) -> None:
    """Drop pinhole loops and spurs, joining branches through two-way nodes, until none is left."""
    depth = _node_depths(skel)
    while True:
        _drop_small_loops(skel, depth)
        _join_through_two_way_nodes(skel)
        spurs = {id(b) for b in _spurs(skel, depth)}
        if not spurs:
            return
        skel.branches = [b for b in skel.branches if id(b) not in spurs]


def _node_depths(skel: Skeleton) -> np.ndarray:
    """Largest distance-transform value of each node: the local half-width at a junction."""
    depth = np.zeros(int(skel.cluster.max()) + 1)
    members = np.flatnonzero(skel.cluster >= 0)
    np.maximum.at(depth, skel.cluster[members], skel.depth[members])
    return depth


def _spurs(skel: Skeleton, depth: np.ndarray) -> list[Branch]:
    """End branches shorter than _SPUR_FACTOR half-widths at their junction."""
    # Skeletonizing a thick band forks towards its corners at each end; such forks are spurs, and
    # after pruning them the junction becomes the end, about a half-width from the band's end.
    attached = skel.attachments()
    spurs: list[Branch] = []
    for node, branches in attached.items():
        if _degree(node, branches) < 3:
            continue
        ends = [b for b in branches if b.a != b.b and _degree(b.other(node), attached[b.other(node)]) == 1]
        short = sorted((b for b in ends if b.length < _SPUR_FACTOR * depth[node]), key=lambda b: b.length)
        if len(short) == len(branches):
            short = short[:-2]  # only short arms here: a blob, whose two longest arms make its centre line
        spurs.extend(short)
    return spurs


def _drop_small_loops(skel: Skeleton, depth: np.ndarray) -> None:
    """Drop loops shorter than the circle that fits at them: they ring a pinhole, not a crack."""
    for b in list(skel.branches):
        if b.a >= 0 and b.a == b.b and b.length < 2 * math.pi * depth[b.a]:
            skel.branches.remove(b)
            if not any(b.a in (o.a, o.b) for o in skel.branches):
                skel.points.append(skel.deepest(b.a))  # the loop was all there was of this piece
        elif b.a < 0 and b.length < 2 * math.pi * skel.depth[b.path].max():
            skel.branches.remove(b)
            skel.points.append(b.path[int(np.argmax(skel.depth[b.path]))])


def _join_through_two_way_nodes(skel: Skeleton) -> None:
    """Merge the two branches at each node with exactly two branch ends, so spur tests see whole chains."""
    attached = skel.attachments()
    for node in list(attached):
        here = attached[node]
        if _degree(node, here) != 2:
            continue
        if len(here) == 1:  # one loop through this node alone: a closed loop
            loop = here.pop()
            loop.a = loop.b = -1
            loop.path = loop.path[:-1]
            skel.measure(loop)
            continue
        first, second = here
        head = first.path if first.b == node else first.path[::-1]
        tail = second.path if second.a == node else second.path[::-1]
        path = head + tail[1:] if tail[0] == head[-1] else head + tail
        merged = Branch(path, first.other(node), second.other(node))
        skel.measure(merged)
        for old, end in ((first, merged.a), (second, merged.b)):
            skel.branches.remove(old)
            attached[end].remove(old)
        attached[merged.a].append(merged)
        if merged.b != merged.a:
            attached[merged.b].append(merged)
        skel.branches.append(merged)
        here.clear()


def ends(skel: Skeleton) -> tuple[list[tuple[int, int]], list[int]]:
    """End points as (pixel, a pixel STEP_PX inwards, or itself for a point), and junction pixels."""
    ends: list[tuple[int, int]] = []
    junctions: list[int] = []
    for node, branches in skel.attachments().items():
        deg = _degree(node, branches)
        for b in branches:
            for path in [b.path] * (b.a == node) + [b.path[::-1]] * (b.b == node):
                if deg == 1:
                    ends.append((path[0], path[min(STEP_PX, len(path) - 1)]))
                elif deg >= 3:
                    junctions.append(path[0])
    ends += [(p, p) for p in skel.points for _ in range(2)]  # a point is a centre line with two ends
    return ends, junctions



def near(skel: Skeleton, centres: list[int], radii: np.ndarray) -> np.ndarray:
    """For each skeleton pixel: is it within the given radius of any of the given skeleton pixels?"""
    near = np.zeros(len(skel.coords), dtype=bool)
    if not centres:
        return near
    tree = cKDTree(skel.coords)
    for hits in tree.query_ball_point(skel.coords[centres], r=radii):
        near[hits] = True
    return near


def ridge_widths(coords: np.ndarray, paths: list[np.ndarray], dist: np.ndarray) -> np.ndarray:
    """Width 2 * c - 1 at each pixel of the chains (concatenated), c the DT ridge height found to sub-pixel."""
    # The skeleton sits up to half a pixel off the true centre line (always, for an even width), where
    # the DT is lower than on the ridge. Across the band the DT falls with slope 1 on both sides of the
    # ridge, so a pixel p and a neighbour q beyond the ridge give its height exactly:
    # c = (DT(p) + DT(q) + |n . (q - p)|) / 2, n the unit normal. Neighbours on p's own side give at
    # most c, so the max over the 8 neighbours (and DT(p) itself) is the estimate.
    index, normal, norm = normals(coords, paths)
    points = coords[index]
    depth = dist[points[:, 0], points[:, 1]]
    ridge = depth.copy()
    for dr, dc in OFFSETS:
        across = np.abs(normal[:, 0] * dr + normal[:, 1] * dc)
        ridge = np.maximum(ridge, (depth + dist[points[:, 0] + dr, points[:, 1] + dc] + across) / 2.0)
    # A one-pixel chain has no direction, hence no "across"; and as the skeleton lies within about half
    # a pixel of the ridge, a larger rise comes from a poor normal (at a bend or a junction).
    ridge = np.where(norm > 0, np.minimum(ridge, depth + 0.5), depth)
    return 2.0 * ridge - 1.0


def normals(coords: np.ndarray, paths: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the chains' pixels (concatenated): their indices, unit normals (rows, cols) and the length of the
    tangent they come from (0 where a chain is one pixel: no direction), the tangent joining the pixels
    _TANGENT_PX along the chain either way."""
    index = np.concatenate(paths)
    sizes = np.array([len(p) for p in paths])
    first = np.repeat(np.cumsum(sizes) - sizes, sizes)
    last = first + np.repeat(sizes, sizes) - 1
    pos = np.arange(index.size)
    ahead = coords[index[np.minimum(pos + _TANGENT_PX, last)]]
    behind = coords[index[np.maximum(pos - _TANGENT_PX, first)]]
    tangent = (ahead - behind).astype(float)
    norm = np.hypot(tangent[:, 0], tangent[:, 1])
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) / np.where(norm > 0, norm, 1.0)[:, None]
    return index, normal, norm