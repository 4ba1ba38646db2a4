"""Sampling grids, quad faces, tearing and edges on a regular pixel grid (numpy only).

A grid of ``ny`` rows by ``nx`` columns of sampled pixels has vertex ``i * nx + j`` at row
``i`` (top to bottom) and column ``j`` (left to right). Quad ``(i, j)`` joins the vertices
at rows ``i, i+1`` and columns ``j, j+1``; its corners run counter-clockwise as seen from
the camera (bottom-left, bottom-right, top-right, top-left), so face normals face the camera.
Everything works on whole arrays; nothing loops over pixels.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# The resolution at which tear_threshold is the plain per-face relative depth jump (the default resolution).
TEAR_REFERENCE_RESOLUTION = 512


def sample_indices(height: int, width: int, resolution: int | None = None,
                   stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixel rows and columns to put vertices on.

    stride: every ``stride``-th pixel from pixel 0 (wins over ``resolution``).
    resolution: about ``resolution`` samples along the longer side (capped at the pixel
    count), evenly spread from the first to the last pixel; the shorter side gets the same
    spacing. ``None`` for both = every pixel.

    -> ys: (ny,) int64 pixel rows, xs: (nx,) int64 pixel columns, both increasing.
    """
    if stride is not None:
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        return np.arange(0, height, stride, dtype=np.int64), np.arange(0, width, stride, dtype=np.int64)
    if resolution is None:
        return np.arange(height, dtype=np.int64), np.arange(width, dtype=np.int64)
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    long_side, short_side = max(height, width), min(height, width)
    n_long = min(resolution, long_side)
    n_short = min(short_side, max(2, round(n_long * short_side / long_side)))
    ny, nx = (n_long, n_short) if height >= width else (n_short, n_long)
    ys = np.round(np.linspace(0, height - 1, ny)).astype(np.int64)
    xs = np.round(np.linspace(0, width - 1, nx)).astype(np.int64)
    return ys, xs


def quad_keep_mask(values: np.ndarray, tear_threshold: float | None, relative: bool,
                   jump_scale: float = 1.0) -> np.ndarray:
    """Which grid quads to keep: all four corners have depth and, when tearing, no depth jump.

    values: (ny, nx) float, NaN where a vertex has no depth.
    tear_threshold: None keeps (stretches) every quad with four valid corners.
    relative: the jump is ``(max - min) / min`` (camera distance); else ``max - min``
    (normalised relief depth).
    jump_scale: the jump is multiplied by this before the comparison (see ``tear_jump_scale``).

    -> (ny-1, nx-1) bool
    """
    if tear_threshold is None:  # no depth values needed: four passes over a bool image, no corner stack
        valid = np.isfinite(values)
        return valid[1:, :-1] & valid[1:, 1:] & valid[:-1, 1:] & valid[:-1, :-1]
    corners = np.stack([values[1:, :-1], values[1:, 1:], values[:-1, 1:], values[:-1, :-1]])
    keep = np.isfinite(corners).all(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = corners.min(axis=0)
        jump = corners.max(axis=0) - lo
        if relative:
            jump = jump / lo
    return keep & (jump * np.float32(jump_scale) <= tear_threshold)


def tear_jump_scale(height: int, width: int, xs: np.ndarray, ys: np.ndarray) -> float:
    """Factor that judges every mesh by the slope of a ``TEAR_REFERENCE_RESOLUTION``-wide mesh.

    A face spanning ``s`` pixels sees ``s`` times the depth change of a one-pixel face on the
    same smooth surface. Scaling each face's jump by (reference spacing / this spacing) makes
    the tear threshold mean the same surface steepness at every resolution, so a coarser mesh
    does not fall apart into holes; at the reference resolution the factor is 1.
    """
    long_side = max(height, width)
    samples = xs if width >= height else ys
    if len(samples) < 2 or long_side < 2:
        return 1.0
    spacing = (samples[-1] - samples[0]) / (len(samples) - 1)
    reference = (long_side - 1) / (TEAR_REFERENCE_RESOLUTION - 1)
    return float(reference / spacing)


def grid_topology(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces, edges and face-corner edges of the kept quads of a grid, in numpy.

    Edges are read off the grid structure instead of deduplicating face edges: the
    horizontal edge right of vertex (i, j) exists when the quad above or below it is kept,
    the vertical edge below it when the quad left or right of it is kept.

    keep: (ny-1, nx-1) bool
    -> faces: (F, 4) int32 grid vertex indices, edges: (E, 2) int32 grid vertex indices,
       corner_edges: (F*4,) int32 edge index of the edge leaving each face corner.
    (``grid_topology_with_edge_ids`` leaves room for the faces the fill adds.)
    """
    topology = grid_topology_with_edge_ids(keep)
    return topology.faces, topology.edges, topology.corner_edges


class GridTopology(NamedTuple):
    """``grid_topology``'s arrays plus where each lattice edge sits among ``edges``.

    horizontal: (ny, nx-1) bool the edge right of each vertex exists; vertical: (ny-1, nx) bool
    the edge below it exists; horizontal_id, vertical_id: int32 of the same shapes, that edge's
    index in ``edges`` (meaningless where the edge does not exist); edge_room: (E + spare_edges, 2)
    int32 the allocation ``edges`` is the start of, with rows left unset for edges a caller adds.
    """

    faces: np.ndarray
    edges: np.ndarray
    corner_edges: np.ndarray
    horizontal: np.ndarray
    vertical: np.ndarray
    horizontal_id: np.ndarray
    vertical_id: np.ndarray
    edge_room: np.ndarray


def lattice_edges(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ny, nx-1) bool horizontal and (ny-1, nx) bool vertical grid edges the ``keep`` quads use."""
    qy, qx = keep.shape
    horizontal = np.zeros((qy + 1, qx), dtype=bool)
    horizontal[:-1] |= keep
    horizontal[1:] |= keep
    vertical = np.zeros((qy, qx + 1), dtype=bool)
    vertical[:, :-1] |= keep
    vertical[:, 1:] |= keep
    return horizontal, vertical


def quad_corner_edges(quads: np.ndarray, nx: int, horizontal_id: np.ndarray, vertical_id: np.ndarray,
                      out: np.ndarray) -> None:
    """Write into ``out`` ((k, 4) int32) the edge leaving each corner of the quads with flat indices
    ``quads`` ((k,) int32, ``row * (nx-1) + column``), in the corner order of ``grid_topology``,
    from flat (ny*(nx-1),) ``horizontal_id`` and ((ny-1)*nx,) ``vertical_id``."""
    top_left = quads + quads // np.int32(nx - 1)
    out[:, 0] = horizontal_id[quads + np.int32(nx - 1)]  # bottom-left -> bottom-right
    out[:, 1] = vertical_id[top_left + 1]              # bottom-right -> top-right
    out[:, 2] = horizontal_id[quads]                   # top-right -> top-left
    out[:, 3] = vertical_id[top_left]                  # top-left -> bottom-left


def grid_topology_with_edge_ids(keep: np.ndarray, spare_faces: int = 0, spare_edges: int = 0) -> GridTopology:
    """``grid_topology`` and the lattice-edge maps (``GridTopology``) the fill's layer reuses edges by,
    with room for ``spare_edges`` more edges after the grid's (rows never written cost no memory)."""
    qy, qx = keep.shape
    ny, nx = qy + 1, qx + 1
    horizontal, vertical = lattice_edges(keep)
    h_flat, v_flat = horizontal.ravel(), vertical.ravel()
    n_horizontal = int(np.count_nonzero(h_flat))
    h_id = np.cumsum(h_flat, dtype=np.int32)
    h_id -= 1
    v_id = np.cumsum(v_flat, dtype=np.int32)
    v_id += n_horizontal - 1

    # vertex (i, j) of edge/quad index k: horizontal k = i*(nx-1) + j -> k + i; vertical k -> k itself
    h_index = np.flatnonzero(h_flat).astype(np.int32)
    h_start = h_index + h_index // np.int32(nx - 1)
    v_start = np.flatnonzero(v_flat).astype(np.int32)
    n_edges = len(h_start) + len(v_start)
    edge_room = np.empty((n_edges + spare_edges, 2), dtype=np.int32)
    edges = edge_room[:n_edges]
    edges[: len(h_start), 0] = h_start
    edges[: len(h_start), 1] = h_start + 1
    edges[len(h_start):, 0] = v_start
    edges[len(h_start):, 1] = v_start + np.int32(nx)

    quads = np.flatnonzero(keep.ravel()).astype(np.int32)
    top_left = quads + quads // np.int32(nx - 1)       # grid vertex (i, j) of quad (i, j)
    n = len(quads)
    faces = np.empty((n + spare_faces, 4), dtype=np.int32)
    faces[:n, 0] = top_left + np.int32(nx)              # bottom-left
    faces[:n, 1] = top_left + np.int32(nx + 1)          # bottom-right
    faces[:n, 2] = top_left + 1                         # top-right
    faces[:n, 3] = top_left                             # top-left
    corner_edges = np.empty((n + spare_faces, 4), dtype=np.int32)
    quad_corner_edges(quads, nx, h_id, v_id, corner_edges[:n])
    return GridTopology(faces, edges, corner_edges.reshape(-1), horizontal, vertical,
                        h_id.reshape(ny, nx - 1), v_id.reshape(ny - 1, nx), edge_room)


def compact_vertices(n_vertices: int, faces: np.ndarray, edges: np.ndarray
                     ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Drop vertices that no face uses (loose vertices left by tearing or missing depth).

    faces: (F, 4) int32, edges: (E, 2) int32, indices into ``n_vertices`` vertices.
    -> used: (V,) int32 old indices of the kept vertices (increasing), or None when every
       vertex is used (nothing changes), faces: (F, 4) int32, edges: (E, 2) int32, renumbered.
    """
    is_used = np.zeros(n_vertices, dtype=bool)
    is_used[faces.ravel()] = True
    if is_used.all():
        return None, faces, edges
    used = np.flatnonzero(is_used).astype(np.int32)
    new_index = np.cumsum(is_used, dtype=np.int32)
    new_index -= 1
    return used, new_index[faces], new_index[edges]
