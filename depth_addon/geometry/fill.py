"""The hidden background layer behind every tear, and the rim out to the photo's frame (numpy + OpenCV).

Tearing drops the faces across a depth jump, which leaves a hole: through the camera a thin
outline of the world around every foreground shape, from a camera moved sideways an empty
crescent. The fill continues the *far* side of each tear behind the near side:

* **Which vertices.** In every torn quad the corners nearer than the geometric mean of its
  nearest and farthest corner are *near*, the others *far*. The band is the near vertices
  plus every vertex within ``fill_width`` of them on the near side (closer to a near vertex
  than to a far one: ``cv2.distanceTransform`` of both sets).
* **Depth from the far side only.** Each band vertex gets the local plane through the far side:
  a least-squares fit of inverse depth ``1/z`` against the normalised image coordinates over
  the known vertices in a square window (moments summed with ``cv2.boxFilter``). The near side
  has weight zero, so it is never averaged in; a plane in the world is exactly affine in ``1/z``
  under a pinhole camera, so plane backgrounds (walls, floors) continue exactly. The result is
  kept behind the near surface it hides behind.
* **Geometry.** Band vertices get a second vertex at the filled depth. The layer's quads are the
  grid quads with a band corner that do not tear on the filled depth; their other corners are
  the existing far-side vertices, so the layer shares its vertices with the far surface (no
  crack) and, in every torn cell, spans exactly the cell's pixels: through the camera the gap
  between the near and the far vertex row is covered.
* **Rim.** Vertices sit on pixel centres, so the mesh stops half a pixel inside the photo's
  frame; the rim adds one quad per border edge out to the frame edge (same depth, UVs on the
  frame edge), sharing the border vertices.
* **Colour from the far side only.** The layer samples an extended copy of the photo: the
  photo pixels it shows in place of the near side ("hidden") are filled by a masked push-pull
  (``cv2.pyrDown``/``pyrUp`` of weight-premultiplied colour, weight zero on the near side),
  every other pixel is the photo's own.

Everything is vectorised; nothing loops over pixels. Array shapes are in the docstrings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .grid import quad_keep_mask

# A photo pixel is hidden by the near side when it is this much nearer than the layer behind it.
BEHIND_MARGIN = 0.01
EDGE_PIXELS = 2            # photo pixels next to the near side that give no colour to the fill
LAYER_MATERIAL_INDEX = 1   # the layer's faces use the object's second material (the extended photo)
MIN_FILL_CELLS = 2         # the band is at least this many grid cells wide
MIN_KNOWN_SHARE = 0.15     # a plane-fit window is used once this share of it is known far side


@dataclass(frozen=True)
class FillLayer:
    """What texturing the layer needs (see ``extend_photo``).

    hidden: (H, W) bool photo pixels the layer shows where the photo shows the near side.
    source: (H, W) bool photo pixels its colour may come from (the far side and everything
    away from tears; never the near side).
    """

    hidden: np.ndarray
    source: np.ndarray

    @property
    def has_hidden(self) -> bool:
        return bool(self.hidden.any())


@dataclass(frozen=True)
class Background:
    """The band of grid vertices behind which the far side continues, and its filled depth.

    band: (ny, nx) bool; depth: (ny, nx) float32 the layer's depth (filled on the band,
    the grid's own depth elsewhere, NaN where there is none); near_side: (ny, nx) bool
    vertices on the near side of a tear (within reach of the fill), never a colour source;
    known: (ny, nx) bool the far-side vertices the filled depth was fitted to.
    """

    band: np.ndarray
    depth: np.ndarray
    near_side: np.ndarray
    known: np.ndarray


def fill_cells(fill_width: float, height: int, width: int, xs: np.ndarray, ys: np.ndarray) -> int:
    """``fill_width`` (a fraction of the photo's longer side) in grid cells, at least MIN_FILL_CELLS."""
    samples = xs if width >= height else ys
    spacing = (samples[-1] - samples[0]) / (len(samples) - 1) if len(samples) > 1 else 1.0
    return max(MIN_FILL_CELLS, math.ceil(fill_width * max(height, width) / max(spacing, 1.0)))


def background(values: np.ndarray, torn: np.ndarray, cells: int, tear_threshold: float,
               px: np.ndarray, py: np.ndarray, focal: float) -> Background:
    """Band and filled depth behind every torn quad.

    values: (ny, nx) float32 camera distance, NaN = no depth; torn: (ny-1, nx-1) bool quads
    dropped for a depth jump; cells: band width in grid cells; tear_threshold: the relative jump
    that tears (known far side lies at least that much behind the near side within reach);
    px: (nx,), py: (ny,) pixel coordinates of the grid columns/rows minus the principal
    point; focal: focal length in pixels.
    """
    import cv2

    ny, nx = values.shape
    corners = np.stack([values[1:, :-1], values[1:, 1:], values[:-1, 1:], values[:-1, :-1]])
    with np.errstate(invalid="ignore"):
        split = np.sqrt(corners.min(axis=0) * corners.max(axis=0))
        is_near = torn & (corners < split)
        is_far = torn & (corners >= split)
    near = np.zeros((ny, nx), dtype=bool)
    far = np.zeros((ny, nx), dtype=bool)
    for grid, corner in ((near, is_near), (far, is_far)):
        grid[1:, :-1] |= corner[0]
        grid[1:, 1:] |= corner[1]
        grid[:-1, 1:] |= corner[2]
        grid[:-1, :-1] |= corner[3]
    valid = np.isfinite(values)
    if not near.any():
        empty = np.zeros((ny, nx), dtype=bool)
        return Background(empty, values, empty, valid)
    to_near = cv2.distanceTransform((~near).astype(np.uint8), cv2.DIST_L2, 5)
    to_far = cv2.distanceTransform((~far).astype(np.uint8), cv2.DIST_L2, 5) if far.any() else np.inf
    near_side = near | (to_near < to_far)
    band = valid & (near | (near_side & (to_near <= cells)))
    # Known far side: off the near side, and clearly behind every near vertex within reach (steep
    # faces of a foreground object tear inside it too, so the split by distance alone can leak)
    radius = cells + 2
    reach = cv2.dilate(np.where(near, values, 0).astype(np.float32),
                       cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1)))
    with np.errstate(invalid="ignore"):
        known = valid & ~near_side & (values > reach * np.float32(1 + tear_threshold))
    filled = _plane_fill(values, known, band, radius, px / focal, py / focal)
    with np.errstate(invalid="ignore"):  # a vertex with no far side behind it within reach gets no layer
        band &= filled > values * np.float32(1 + tear_threshold)
    depth = values.copy()
    depth[band] = filled[band]
    return Background(band, depth, near_side & valid, known)


def _plane_fill(values, known, band, radius, x, y) -> np.ndarray:
    """(ny, nx) float32: at each band vertex, the least-squares plane ``1/z = a + b x + c y`` through the
    ``known`` vertices in a square window around it, evaluated there (NaN elsewhere).

    Each vertex takes the smallest window (half sizes 2, 4, 8, ... up to ``radius``) that is at
    least MIN_KNOWN_SHARE known, over more than one row and column: the nearest far surface decides, and where two planes meet
    (a floor and a wall) a small window mixes them over a short distance only. The window sums
    are ``cv2.boxFilter`` of the moment images (constant time per vertex at any size); each fit is
    centred on its own vertex. A small ridge on the slopes keeps a window whose known vertices lie
    on a line (a thin far strip) well-posed. A band vertex with no known vertex within ``radius``
    stays NaN.
    """
    import cv2

    ny, nx = values.shape
    w = known.astype(np.float64)
    u = np.where(known, 1.0 / np.where(known, values, 1.0), 0.0)
    gx = np.broadcast_to(x[None, :].astype(np.float64), (ny, nx))
    gy = np.broadcast_to(y[:, None].astype(np.float64), (ny, nx))
    moments = [np.ascontiguousarray(m) for m in (w, w * gx, w * gy, w * gx * gx, w * gx * gy, w * gy * gy,
                                                 u, u * gx, u * gy)]
    cell_x = abs(float(x[1] - x[0])) if len(x) > 1 else 1.0
    cell_y = abs(float(y[1] - y[0])) if len(y) > 1 else 1.0
    cell = max(cell_x, cell_y)
    band_y, band_x = np.nonzero(band)
    x0, y0 = gx[band_y, band_x], gy[band_y, band_x]
    inverse_depth = np.full(len(band_y), np.nan)
    todo = np.ones(len(band_y), dtype=bool)
    sizes = [r for r in (2, 4, 8, 16, 32, 64, 128, 256) if r < radius] + [radius]
    for size in sizes:
        side = 2 * size + 1
        sums = [cv2.boxFilter(m, cv2.CV_64F, (side, side), normalize=False, borderType=cv2.BORDER_CONSTANT)
                [band_y[todo], band_x[todo]] for m in moments]
        s, sx, sy, sxx, sxy, syy, su, sxu, syu = sums
        if size == sizes[-1]:
            take = s > 0
        else:  # enough known vertices, spread over more than one row and one column (slopes both ways)
            with np.errstate(invalid="ignore", divide="ignore"):
                spread_x = sxx / s - (sx / s) ** 2
                spread_y = syy / s - (sy / s) ** 2
            take = ((s >= MIN_KNOWN_SHARE * side * side) & (spread_x >= 0.2 * cell_x * cell_x)
                    & (spread_y >= 0.2 * cell_y * cell_y))
        if not take.any():
            continue
        s, sx, sy, sxx, sxy, syy, su, sxu, syu = (a[take] for a in sums)
        px0, py0 = x0[todo][take], y0[todo][take]
        # centre every fit on its own vertex: moments of (x - x0), (y - y0)
        cx, cy = sx - px0 * s, sy - py0 * s
        cxx = sxx - 2 * px0 * sx + px0 * px0 * s
        cyy = syy - 2 * py0 * sy + py0 * py0 * s
        cxy = sxy - px0 * sy - py0 * sx + px0 * py0 * s
        cxu, cyu = sxu - px0 * su, syu - py0 * su
        ridge = 0.001 * cell * cell * s
        matrix = np.stack([np.stack([s, cx, cy], -1), np.stack([cx, cxx + ridge, cxy], -1),
                           np.stack([cy, cxy, cyy + ridge], -1)], -2)
        rhs = np.stack([su, cxu, cyu], -1)
        index = np.flatnonzero(todo)[take]
        inverse_depth[index] = np.linalg.solve(matrix, rhs[..., None])[:, 0, 0]
        todo[index] = False
    # a plane that reaches infinity (1/z <= 0) is cut at twice the farthest known depth
    floor = 1.0 / (2.0 * float(np.nanmax(np.where(known, values, np.nan)))) if known.any() else 1e-6
    out = np.full((ny, nx), np.nan, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        out[band_y, band_x] = 1.0 / np.maximum(inverse_depth, floor)
    return out


def hidden_pixels(z_map: np.ndarray, bg: Background, xs: np.ndarray, ys: np.ndarray) -> FillLayer:
    """Which photo pixels the layer shows filled, and which may give colour.

    A pixel takes its nearest grid vertex; it is hidden when that vertex (or one next to it) is
    on the band and the pixel is clearly nearer than the layer there. z_map: (H, W) float32.
    """
    import cv2

    height, width = z_map.shape
    columns = _nearest_sample(xs, width)
    rows = _nearest_sample(ys, height)
    reach = cv2.dilate(bg.band.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    layer_depth = bg.depth[np.ix_(rows, columns)]
    with np.errstate(invalid="ignore"):
        nearer = z_map * np.float32(1 + BEHIND_MARGIN) < layer_depth
    hidden = reach[np.ix_(rows, columns)] & nearer
    excluded = hidden | bg.near_side[np.ix_(rows, columns)]
    # a photo's edge pixels blend both sides (anti-aliasing, defocus): keep the near side's colour out
    excluded = cv2.dilate(excluded.astype(np.uint8), np.ones((2 * EDGE_PIXELS + 1,) * 2, np.uint8)).astype(bool)
    return FillLayer(hidden=hidden, source=~excluded & np.isfinite(z_map))


def _nearest_sample(samples: np.ndarray, size: int) -> np.ndarray:
    """(size,) index of the nearest of the increasing ``samples`` for every pixel 0..size-1."""
    middles = (samples[:-1] + samples[1:]) / 2
    return np.searchsorted(middles, np.arange(size), side="right").astype(np.intp)


def extend_photo(rgb: np.ndarray, layer: FillLayer) -> np.ndarray:
    """The photo with its hidden pixels filled from the far side only (masked push-pull).

    The photo's colour, premultiplied by a weight that is 0 off ``layer.source``, is halved
    with ``cv2.pyrDown`` down to a few pixels, then pulled back up with ``cv2.pyrUp``: each
    level keeps its own average where it has enough weight and takes the coarser level's
    elsewhere. Seen pixels are returned unchanged. rgb: (H, W, 3) uint8 -> (H, W, 3) uint8.
    """
    import cv2

    out = np.array(rgb[..., :3], dtype=np.uint8, copy=True)
    if not layer.has_hidden:
        return out
    weight = layer.source.astype(np.float32)
    premultiplied = rgb[..., :3].astype(np.float32) * weight[..., None]
    levels = [(premultiplied, weight)]
    while min(levels[-1][1].shape) > 4:
        colour, w = levels[-1]
        levels.append((cv2.pyrDown(colour), cv2.pyrDown(w)))
    colour, w = levels[-1]
    estimate = colour / np.maximum(w, 1e-6)[..., None]
    for colour, w in reversed(levels[:-1]):
        coarse = cv2.pyrUp(estimate, dstsize=(w.shape[1], w.shape[0]))
        trust = np.clip(w * 4.0, 0.0, 1.0)[..., None]  # a quarter of the window known is enough
        estimate = colour / np.maximum(w, 1e-6)[..., None] * trust + coarse * (1.0 - trust)
    out[layer.hidden] = np.clip(np.round(estimate[layer.hidden]), 0, 255).astype(np.uint8)
    return out


@dataclass(frozen=True)
class FilledMesh:
    """A grid mesh plus its background layer and rim, before unused vertices are dropped.

    Vertices: the ny*nx grid vertices, then one per band vertex (the layer), then the rim's.
    positions: (V, 3) float32, depth: (V,) float32, grid_index: (V,) int32 grid vertex each
    vertex belongs to; faces: (F, 4) int32, edges: (E, 2) int32, corner_edges: (F*4,) int32,
    corner_uvs: (F*4, 2) float32, material_index: (F,) int32 (0 photo, 1 extended photo).
    """

    positions: np.ndarray
    depth: np.ndarray
    grid_index: np.ndarray
    faces: np.ndarray
    edges: np.ndarray
    corner_edges: np.ndarray
    corner_uvs: np.ndarray
    material_index: np.ndarray


def add_layer_and_rim(values, positions, keep, faces, edges, corner_edges, corner_uvs, bg: Background | None,
                      tear_threshold, jump_scale, xs, ys, width, height, focal, pivot) -> FilledMesh:
    """Append the background layer (``bg``; None = no layer) and the rim to a grid mesh.

    values: (ny, nx) float32 distance; positions: (ny*nx, 3) float32; keep: (ny-1, nx-1) bool;
    faces, edges, corner_edges, corner_uvs: the kept quads' topology in grid vertex indices
    (``grid.grid_topology``). The layer's quads are those with a band corner that do not tear
    on the layer's depth, plus every torn cell; each reuses the grid vertex at every corner that
    is not on the band.
    """
    ny, nx = values.shape
    n_grid = ny * nx
    grid_depth = values.reshape(-1)
    pixel_x = (xs.astype(np.float64) + 0.5)
    pixel_y = (ys.astype(np.float64) + 0.5)
    quad = np.arange((ny - 1) * (nx - 1), dtype=np.int64).reshape(ny - 1, nx - 1)
    top_left = quad + quad // (nx - 1)
    quad_corners = np.stack([top_left + nx, top_left + nx + 1, top_left + 1, top_left], -1)  # (qy, qx, 4)

    # the layer: a vertex per band vertex, quads with a band corner that hold together on the layer's depth
    if bg is not None and bg.band.any():
        band = bg.band.reshape(-1)
        band_index = np.flatnonzero(band)
        layer_of = np.arange(n_grid, dtype=np.int64)
        layer_of[band_index] = n_grid + np.arange(len(band_index))
        layer_keep = quad_keep_mask(bg.depth, tear_threshold, relative=True, jump_scale=jump_scale)
        layer_keep &= band[quad_corners].any(axis=-1)
        # every torn cell gets a layer face, also where the layer still jumps (a continuous slope too
        # steep for the threshold, not an occlusion): through the camera no cell stays open
        layer_keep |= quad_keep_mask(values, None, relative=True) & ~keep
        layer_faces = layer_of[quad_corners[layer_keep]]
        layer_depth = bg.depth.reshape(-1)[band_index]
    else:
        band_index = np.zeros(0, dtype=np.int64)
        layer_of = np.arange(n_grid, dtype=np.int64)
        layer_keep = np.zeros_like(keep)
        layer_faces = np.zeros((0, 4), dtype=np.int64)
        layer_depth = np.zeros(0, dtype=np.float32)
    n_layer = len(band_index)
    vertex_grid = np.concatenate([np.arange(n_grid), band_index])
    vertex_depth = np.concatenate([grid_depth, layer_depth])

    # the rim: along every border edge of a kept quad (the photo's surface first, else the layer's)
    rim_quads, rim_material = [], []
    sides = (  # border quads, their two border corners (corner slots) and the rim quad's corner order
        (quad_corners[0, :], (3, 2), lambda v, r: (v[0], v[1], r[1], r[0])),           # top: tl, tr
        (quad_corners[-1, :], (0, 1), lambda v, r: (r[0], r[1], v[1], v[0])),          # bottom: bl, br
        (quad_corners[:, 0], (3, 0), lambda v, r: (r[1], v[1], v[0], r[0])),           # left: tl, bl
        (quad_corners[:, -1], (2, 1), lambda v, r: (v[1], r[1], r[0], v[0])),          # right: tr, br
    )
    keeps = ((keep[0, :], layer_keep[0, :]), (keep[-1, :], layer_keep[-1, :]),
             (keep[:, 0], layer_keep[:, 0]), (keep[:, -1], layer_keep[:, -1]))
    border_vertices = []
    for (corners, slots, order), (main_kept, layer_kept) in zip(sides, keeps, strict=True):
        for kept, mapping, material in ((main_kept, None, 0), (layer_kept & ~main_kept, layer_of, LAYER_MATERIAL_INDEX)):
            ends = corners[kept][:, list(slots)]
            if mapping is not None:
                ends = mapping[ends]
            border_vertices.append(ends)
            rim_quads.append((ends, order))
            rim_material.append(np.full(len(ends), material, dtype=np.int32))
    border = np.unique(np.concatenate([b.reshape(-1) for b in border_vertices]))
    rim_of = np.full(n_grid + n_layer, -1, dtype=np.int64)
    rim_of[border] = n_grid + n_layer + np.arange(len(border))
    rim_faces = [np.stack(order(ends.T, rim_of[ends].T), -1) for ends, order in rim_quads]

    # positions of layer and rim vertices: unproject their pixel (the frame edge for the rim) at their depth
    rim_grid = vertex_grid[border]
    rim_row, rim_column = np.divmod(rim_grid, nx)
    rim_x = pixel_x[rim_column]
    rim_y = pixel_y[rim_row]
    rim_x[rim_column == 0], rim_x[rim_column == nx - 1] = 0.0, float(width)
    rim_y[rim_row == 0], rim_y[rim_row == ny - 1] = 0.0, float(height)
    layer_row, layer_column = np.divmod(band_index, nx)
    new_x = np.concatenate([pixel_x[layer_column], rim_x])
    new_y = np.concatenate([pixel_y[layer_row], rim_y])
    new_z = np.concatenate([layer_depth, vertex_depth[border]]).astype(np.float64)
    new_positions = np.empty((len(new_z), 3), dtype=np.float32)
    new_positions[:, 0] = (new_x - width / 2) / focal * new_z
    new_positions[:, 1] = new_z - pivot
    new_positions[:, 2] = (height / 2 - new_y) / focal * new_z
    all_positions = np.concatenate([positions, new_positions])
    all_depth = np.concatenate([vertex_depth, vertex_depth[border]]).astype(np.float32)
    all_grid = np.concatenate([vertex_grid, rim_grid]).astype(np.int32)
    uv_x = np.concatenate([pixel_x[np.arange(n_grid) % nx], new_x]) / width
    uv_y = 1.0 - np.concatenate([pixel_y[np.arange(n_grid) // nx], new_y]) / height
    vertex_uv = np.stack([uv_x, uv_y], -1).astype(np.float32)

    extra_faces = np.concatenate([layer_faces, *rim_faces]).astype(np.int64)
    extra_material = np.concatenate([np.full(len(layer_faces), LAYER_MATERIAL_INDEX, np.int32), *rim_material])
    all_edges, extra_corner_edges = _extra_edges(edges, extra_faces, len(all_positions), n_grid)
    return FilledMesh(
        positions=all_positions, depth=all_depth, grid_index=all_grid,
        faces=np.concatenate([faces, extra_faces.astype(np.int32)]),
        edges=all_edges,
        corner_edges=np.concatenate([corner_edges, extra_corner_edges]),
        corner_uvs=np.concatenate([corner_uvs, vertex_uv[extra_faces.reshape(-1)]]),
        material_index=np.concatenate([np.zeros(len(faces), np.int32), extra_material]),
    )


def _extra_edges(edges, extra_faces, n_vertices, n_grid) -> tuple[np.ndarray, np.ndarray]:
    """Edges of the added faces: those the grid mesh already has are reused, the rest appended.

    The added faces are few (a band along the tears and the border), so deduplicating their
    edges by sorting is cheap; of the grid's edges only those between vertices the added faces
    touch are looked at. -> (all edges (E', 2) int32, corner edges of the added faces (4 F',) int32)
    """
    first = extra_faces.reshape(-1)
    second = np.roll(extra_faces, -1, axis=1).reshape(-1)
    keys = np.minimum(first, second) * n_vertices + np.maximum(first, second)
    unique, inverse = np.unique(keys, return_inverse=True)
    edge_index = np.full(len(unique), -1, dtype=np.int64)
    touched = np.zeros(n_grid, dtype=bool)
    touched[first[first < n_grid]] = True
    candidates = np.flatnonzero(touched[edges[:, 0]] & touched[edges[:, 1]])
    if len(candidates):
        pairs = edges[candidates].astype(np.int64)
        grid_keys = pairs.min(axis=1) * n_vertices + pairs.max(axis=1)
        where = np.clip(np.searchsorted(unique, grid_keys), 0, len(unique) - 1)
        found = unique[where] == grid_keys
        edge_index[where[found]] = candidates[found]
    new = edge_index < 0
    edge_index[new] = len(edges) + np.arange(int(new.sum()))
    new_pairs = np.stack([unique[new] // n_vertices, unique[new] % n_vertices], -1).astype(np.int32)
    return np.concatenate([edges, new_pairs]), edge_index[inverse].astype(np.int32)
