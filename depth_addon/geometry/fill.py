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
  the known vertices in the smallest square window that holds enough of them (window sums from
  ``cv2.integral`` tables). The near side, and anything not clearly behind every near vertex
  within reach, has weight zero, so it is never averaged in; a plane in the world is exactly
  affine in ``1/z`` under a pinhole camera, so plane backgrounds (walls, floors) continue
  exactly. A band vertex whose fitted background is not behind it gets no layer vertex.
* **Geometry.** Band vertices get a second vertex at the filled depth. The layer's quads are the
  grid quads with a band corner that do not tear on the filled depth, plus every torn cell; their
  other corners are the existing far-side vertices, so the layer shares its vertices with the far
  surface (no crack) and, in every torn cell, spans exactly the cell's pixels: through the camera
  the gap between the near and the far vertex row is covered. The torn cells are what the camera
  sees, so they keep the photo's material; the faces behind the near side get the second one.
* **Rim.** Vertices sit on pixel centres, so the mesh stops half a pixel inside the photo's
  frame; the rim adds one quad per border edge out to the frame edge (same depth, UVs on the
  frame edge), sharing the border vertices.
* **Colour from the far side only.** The layer samples an extended copy of the photo: the
  photo pixels it shows in place of the near side ("hidden") are filled by a masked push-pull
  (``cv2.pyrDown``/``pyrUp`` of weight-premultiplied colour, weight zero on the near side and
  the EDGE_PIXELS around it), every other pixel is the photo's own.

Everything is vectorised; nothing loops over pixels. Array shapes are in the docstrings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .grid import (
    GridTopology,
    compact_vertices,
    grid_topology_with_edge_ids,
    lattice_edges,
    quad_corner_edges,
    quad_keep_mask,
)

# A photo pixel is hidden by the near side when it is this much nearer than the layer behind it.
BEHIND_MARGIN = 0.01
EDGE_PIXELS = 2            # photo pixels next to the near side that give no colour to the fill
LAYER_MATERIAL_INDEX = 1   # the layer's faces use the object's second material (the extended photo)
MIN_FILL_CELLS = 2         # the band is at least this many grid cells wide
FIT_RESOLUTION = 512       # plane fits on every k-th vertex of a mesh finer than this along its longer side
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
    vertices on the near side of a tear (within reach of the fill), never a colour source.
    """

    band: np.ndarray
    depth: np.ndarray
    near_side: np.ndarray


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
    ny, nx = values.shape
    empty = np.zeros((ny, nx), dtype=bool)
    torn_rows, torn_columns = np.flatnonzero(torn.any(axis=1)), np.flatnonzero(torn.any(axis=0))
    if not len(torn_rows):
        return Background(empty, values, empty)
    # all the work happens within reach of a torn quad: the band (cells) plus its plane-fit windows
    margin = 2 * (cells + 2) + 2
    top, bottom = max(torn_rows[0] - margin, 0), min(torn_rows[-1] + 2 + margin, ny)
    left, right = max(torn_columns[0] - margin, 0), min(torn_columns[-1] + 2 + margin, nx)
    window = np.s_[top:bottom, left:right]
    # the plane fits' density follows the whole grid (not this part of it): as dense as on a
    # FIT_RESOLUTION-wide mesh, so a finer mesh does not fit finer than the default resolution does
    fit_step = max(1, math.ceil(max(ny, nx) / FIT_RESOLUTION))
    part = _background_in(values[window], torn[top:bottom - 1, left:right - 1], cells, tear_threshold,
                          px[left:right], py[top:bottom], focal, fit_step)
    band, near_side = empty.copy(), empty.copy()
    band[window], near_side[window] = part.band, part.near_side
    depth = values.copy()
    depth[window] = part.depth
    return Background(band, depth, near_side)


def _background_in(values, torn, cells, tear_threshold, px, py, focal, fit_step) -> Background:
    """``background`` on the part of the grid around the torn quads."""
    cv2 = _cv2()

    ny, nx = values.shape
    quad_rows, quad_columns = np.nonzero(torn)
    corner_rows = np.stack([quad_rows + 1, quad_rows + 1, quad_rows, quad_rows], -1)
    corner_columns = np.stack([quad_columns, quad_columns + 1, quad_columns + 1, quad_columns], -1)
    corners = values[corner_rows, corner_columns]  # (torn quads, 4)
    split = np.sqrt(corners.min(axis=1) * corners.max(axis=1))[:, None]
    near = np.zeros((ny, nx), dtype=bool)
    far = np.zeros((ny, nx), dtype=bool)
    is_near = corners < split
    near[corner_rows[is_near], corner_columns[is_near]] = True
    far[corner_rows[~is_near], corner_columns[~is_near]] = True
    valid = np.isfinite(values)
    if not near.any():
        empty = np.zeros((ny, nx), dtype=bool)
        return Background(empty, values, empty)
    to_near = cv2.distanceTransform((~near).astype(np.uint8), cv2.DIST_L2, 5)
    to_far = cv2.distanceTransform((~far).astype(np.uint8), cv2.DIST_L2, 5) if far.any() else np.inf
    near_side = near | (to_near < to_far)
    band = valid & (near | (near_side & (to_near <= cells)))
    # Known far side, on the vertices the planes are fitted to (every fit_step-th): off the near
    # side, and clearly behind every near vertex within reach (steep faces of a foreground object
    # tear inside it too, so the split by distance alone can leak)
    radius = cells + 2
    s = fit_step
    # reach: the farthest near vertex within radius, zero farther from every near vertex, so the
    # dilation runs on the near vertices' bounding box plus radius only (its start on a fitted
    # vertex). A square's maximum is the maximum of its columns' maxima: the vertical pass runs on
    # every row, the horizontal one on the fitted rows only
    near_rows, near_columns = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
    top, left = max(near_rows[0] - radius, 0) // s * s, max(near_columns[0] - radius, 0) // s * s
    reach_window = np.s_[top:near_rows[-1] + radius + 1, left:near_columns[-1] + radius + 1]
    span = np.ones((2 * radius + 1, 1), np.uint8)
    reach_part = cv2.dilate(np.where(near[reach_window], values[reach_window], 0).astype(np.float32), span)[::s]
    reach_part = cv2.dilate(reach_part, span.T)[:, ::s]
    reach = np.zeros(((ny - 1) // s + 1, (nx - 1) // s + 1), dtype=np.float32)
    reach[top // s:top // s + reach_part.shape[0], left // s:left // s + reach_part.shape[1]] = reach_part
    with np.errstate(invalid="ignore"):
        known = (valid[::s, ::s] & ~near_side[::s, ::s]
                 & (values[::s, ::s] > reach * np.float32(1 + tear_threshold)))
    filled = _plane_fill(values, known, band, radius, px / focal, py / focal, s)
    with np.errstate(invalid="ignore"):  # a vertex with no far side behind it within reach gets no layer
        band &= filled > values * np.float32(1 + tear_threshold)
    depth = values.copy()
    depth[band] = filled[band]
    return Background(band, depth, near_side & valid)


def _plane_fill(values, known, band, radius, x, y, step) -> np.ndarray:
    """(ny, nx) float32: at each band vertex, the least-squares plane ``1/z = a + b x + c y`` through the
    ``known`` vertices in a square window around it, evaluated there (NaN elsewhere, and where no
    known vertex is within ``radius``). known: bool on the fitted vertices, ``[::step, ::step]``.

    With ``step`` > 1 (a mesh finer than FIT_RESOLUTION vertices along its longer side) the fits run
    on every ``step``-th vertex (the planes, not the depths, are taken over: a plane background
    stays exact) and each band vertex evaluates the plane of its nearest fitted vertex at its own
    position.
    """
    ny, nx = values.shape
    band_y, band_x = np.nonzero(band)
    full_x, full_y = x, y
    if step == 1:
        rows, columns, target = band_y, band_x, None
    else:
        values, x, y = values[::step, ::step], x[::step], y[::step]
        coarse = (np.minimum((band_y + step // 2) // step, len(y) - 1) * len(x)
                  + np.minimum((band_x + step // 2) // step, len(x) - 1))
        # the distinct coarse vertices in increasing order (``np.unique``), by marking them on the
        # coarse grid instead of sorting every band vertex
        marked = np.zeros(len(y) * len(x), dtype=bool)
        marked[coarse] = True
        targets = np.flatnonzero(marked)
        target = (np.cumsum(marked, dtype=np.int64) - 1)[coarse]
        rows, columns = np.divmod(targets, len(x))
        radius = math.ceil(radius / step) + 1
    inverse_depth, slope_x, slope_y = _fit_planes(values, known, rows, columns, radius, x, y)
    if target is not None:
        inverse_depth = (inverse_depth[target] + slope_x[target] * (full_x[band_x] - x[columns][target])
                         + slope_y[target] * (full_y[band_y] - y[rows][target]))
    # a plane that reaches infinity (1/z <= 0) is cut at twice the farthest known depth
    floor = 1.0 / (2.0 * float(np.nanmax(np.where(known, values, np.nan)))) if known.any() else 1e-6
    out = np.full((ny, nx), np.nan, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        out[band_y, band_x] = 1.0 / np.maximum(inverse_depth, floor)
    return out


def _fit_planes(values, known, rows, columns, radius, x, y):
    """Least-squares planes ``1/z = a + b (x - x0) + c (y - y0)`` through the ``known`` vertices around
    each target vertex ``(rows, columns)`` -> (a, b, c), each (k,) float64, NaN where none fits.

    Each target takes the smallest window (half sizes 2, 4, 8, ... up to ``radius``) that is at
    least MIN_KNOWN_SHARE known, over more than one row and one column: the nearest far surface
    decides, and where two planes meet (a floor and a wall) a small window mixes them over a
    short distance only. Window sums come from summed-area tables of the moment images
    (``cv2.integral``: four look-ups per target at any size). A small ridge on the slopes keeps a
    window whose known vertices lie on a line (a thin far strip) well-posed.
    """
    cv2 = _cv2()

    ny, nx = values.shape
    w = known.astype(np.float64)
    u = np.where(known, 1.0 / np.where(known, values, 1.0), 0.0)
    gx = np.broadcast_to(x[None, :].astype(np.float64), (ny, nx))
    gy = np.broadcast_to(y[:, None].astype(np.float64), (ny, nx))
    # the nine moment images as the channels of one image: one cv2.integral call, and one row of
    # nine sums per table entry (one gather per window corner)
    moments = np.empty((ny, nx, 9))
    for channel, moment in enumerate((w, w * gx, w * gy, w * gx * gx, w * gx * gy, w * gy * gy, u, u * gx, u * gy)):
        moments[..., channel] = moment
    tables = cv2.integral(moments, sdepth=cv2.CV_64F).reshape(-1, 9)
    cell_x = abs(float(x[1] - x[0])) if len(x) > 1 else 1.0
    cell_y = abs(float(y[1] - y[0])) if len(y) > 1 else 1.0
    cell = max(cell_x, cell_y)
    x0, y0 = gx[rows, columns], gy[rows, columns]
    planes = np.full((len(rows), 3), np.nan)
    todo = np.ones(len(rows), dtype=bool)
    sizes = [r for r in (2, 4, 8, 16, 32, 64, 128, 256) if r < radius] + [radius]
    for size in sizes:
        at_y, at_x = rows[todo], columns[todo]
        top, bottom = np.maximum(at_y - size, 0), np.minimum(at_y + size + 1, ny)
        left, right = np.maximum(at_x - size, 0), np.minimum(at_x + size + 1, nx)
        area = (bottom - top) * (right - left)
        stride = nx + 1
        sums = np.ascontiguousarray((tables[bottom * stride + right] - tables[top * stride + right]
                                     - tables[bottom * stride + left] + tables[top * stride + left]).T)
        s, sx, sy, sxx, sxy, syy, su, sxu, syu = sums
        if size == sizes[-1]:
            take = s > 0
        else:  # enough known vertices, spread over more than one row and one column (slopes both ways)
            with np.errstate(invalid="ignore", divide="ignore"):
                spread_x = sxx / s - (sx / s) ** 2
                spread_y = syy / s - (sy / s) ** 2
            take = ((s >= MIN_KNOWN_SHARE * area) & (spread_x >= 0.2 * cell_x * cell_x)
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
        cxx += ridge
        cyy += ridge
        # the symmetric 3x3 normal equations [[s, cx, cy], [cx, cxx, cxy], [cy, cxy, cyy]] p = (su, cxu, cyu)
        # solved by their cofactors, all targets at once (a batched np.linalg.solve costs several times more)
        c00, c01, c02 = cxx * cyy - cxy * cxy, cy * cxy - cx * cyy, cx * cxy - cy * cxx
        c11, c12, c22 = s * cyy - cy * cy, cx * cy - s * cxy, s * cxx - cx * cx
        det = s * c00 + cx * c01 + cy * c02
        index = np.flatnonzero(todo)[take]
        planes[index, 0] = (c00 * su + c01 * cxu + c02 * cyu) / det
        planes[index, 1] = (c01 * su + c11 * cxu + c12 * cyu) / det
        planes[index, 2] = (c02 * su + c12 * cxu + c22 * cyu) / det
        todo[index] = False
    return planes[:, 0], planes[:, 1], planes[:, 2]


def hidden_pixels(z_map: np.ndarray, bg: Background, xs: np.ndarray, ys: np.ndarray) -> FillLayer:
    """Which photo pixels the layer shows filled, and which may give colour.

    A pixel takes its nearest grid vertex; it is hidden when that vertex (or one next to it) is
    on the band and the pixel is clearly nearer than the layer there. z_map: (H, W) float32.
    """
    cv2 = _cv2()

    height, width = z_map.shape
    hidden = np.zeros((height, width), dtype=bool)
    source = np.isfinite(z_map)
    near_rows, near_columns = np.flatnonzero(bg.near_side.any(axis=1)), np.flatnonzero(bg.near_side.any(axis=0))
    if not len(near_rows):
        return FillLayer(hidden=hidden, source=source)
    # only around the near side: pixels between its first and last row/column, one cell and the edge more
    pad = EDGE_PIXELS + 1
    top = max(int(ys[max(near_rows[0] - 1, 0)]) - pad, 0)
    bottom = min(int(ys[min(near_rows[-1] + 1, len(ys) - 1)]) + pad + 1, height)
    left = max(int(xs[max(near_columns[0] - 1, 0)]) - pad, 0)
    right = min(int(xs[min(near_columns[-1] + 1, len(xs) - 1)]) + pad + 1, width)
    rows = _nearest_sample(ys, height)[top:bottom]
    columns = _nearest_sample(xs, width)[left:right]
    reach = cv2.dilate(bg.band.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    z_part = z_map[top:bottom, left:right]
    with np.errstate(invalid="ignore"):
        nearer = z_part * np.float32(1 + BEHIND_MARGIN) < bg.depth[np.ix_(rows, columns)]
    hidden_part = reach[np.ix_(rows, columns)] & nearer
    excluded = hidden_part | bg.near_side[np.ix_(rows, columns)]
    # a photo's edge pixels blend both sides (anti-aliasing, defocus): keep the near side's colour out
    excluded = cv2.dilate(excluded.astype(np.uint8), np.ones((2 * EDGE_PIXELS + 1,) * 2, np.uint8)).astype(bool)
    hidden[top:bottom, left:right] = hidden_part
    source[top:bottom, left:right] &= ~excluded
    return FillLayer(hidden=hidden, source=source)


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
    cv2 = _cv2()

    out = np.array(rgb[..., :3], dtype=np.uint8, copy=True)
    if not layer.has_hidden:
        return out
    # the colours come from around the hidden pixels: a margin of a tenth of the photo's longer side
    height, width = layer.hidden.shape
    margin = max(16, max(height, width) // 10)
    rows, columns = np.flatnonzero(layer.hidden.any(axis=1)), np.flatnonzero(layer.hidden.any(axis=0))
    top, left = max(rows[0] - margin, 0), max(columns[0] - margin, 0)
    window = np.s_[top:rows[-1] + 1 + margin, left:columns[-1] + 1 + margin]
    # premultiplied colour and its weight (0 or 1) as the four channels of one image: one pyrDown
    # per level; made in uint8 by OpenCV (masked copy, merge), then converted once
    weight = layer.source[window].view(np.uint8)
    part = np.ascontiguousarray(rgb[window][..., :3])
    premultiplied = cv2.merge([*cv2.split(cv2.copyTo(part, weight)), weight]).astype(np.float32)
    window_width = part.shape[1]
    pyramid = [premultiplied]
    while min(pyramid[-1].shape[:2]) > 4:
        pyramid.append(cv2.pyrDown(pyramid[-1]))
    # Going up, a level's estimate is needed only where the next finer level reads it: the hidden
    # pixels' bounding box, and on each coarser level half of the finer box and two pixels more
    # (pyrUp's 5-tap filter reaches one; the second keeps the box's own edge out of reach)
    boxes = [(rows[0] - top, rows[-1] + 1 - top, columns[0] - left, columns[-1] + 1 - left)]
    for level in pyramid[1:]:
        r0, r1, c0, c1 = boxes[-1]
        boxes.append((max(r0 // 2 - 2, 0), min((r1 - 1) // 2 + 3, level.shape[0]),
                      max(c0 // 2 - 2, 0), min((c1 - 1) // 2 + 3, level.shape[1])))
    r0, r1, c0, c1 = boxes[-1]
    colour, w = pyramid[-1][r0:r1, c0:c1, :3], pyramid[-1][r0:r1, c0:c1, 3]
    estimate = colour / np.maximum(w, 1e-6)[..., None]
    hidden = np.flatnonzero(layer.hidden[window])  # flat indices in the window
    hidden_y, hidden_x = np.divmod(hidden, window_width)
    for level in reversed(range(len(pyramid) - 1)):
        (r0, r1, c0, c1), (cr0, cr1, cc0, cc1) = boxes[level], boxes[level + 1]
        fine, known = pyramid[level], pyramid[level + 1]
        # pyrUp of the coarse box, sized as the whole level's where the box reaches its far edge
        size = (fine.shape[1] - 2 * cc0 if cc1 == known.shape[1] else 2 * (cc1 - cc0),
                fine.shape[0] - 2 * cr0 if cr1 == known.shape[0] else 2 * (cr1 - cr0))
        coarse = cv2.pyrUp(estimate, dstsize=size)
        if level == 0:  # the photo's own resolution: only the hidden pixels' estimate is used
            premultiplied = np.take(premultiplied.reshape(-1, 4), hidden, axis=0)
            colour, w = premultiplied[:, :3], premultiplied[:, 3]
            coarse = coarse[hidden_y - 2 * cr0, hidden_x - 2 * cc0]
        else:
            colour, w = fine[r0:r1, c0:c1, :3], fine[r0:r1, c0:c1, 3]
            coarse = coarse[r0 - 2 * cr0:r1 - 2 * cr0, c0 - 2 * cc0:c1 - 2 * cc0]
        trust = np.clip(w * 4.0, 0.0, 1.0)[..., None]  # a quarter of the window known is enough
        # colour / max(w, 1e-6) * trust + coarse * (1 - trust), in place
        estimate = np.divide(colour, np.maximum(w, 1e-6)[..., None])
        estimate *= trust
        estimate += coarse * (1.0 - trust)
    if len(pyramid) == 1:  # a photo a few pixels high has no coarser level: the window's mean colour
        total = premultiplied.reshape(-1, 4).sum(axis=0)
        estimate = np.broadcast_to(total[:3] / max(total[3], 1e-6), (len(hidden), 3))
    out[hidden_y + top, hidden_x + left] = np.clip(np.round(estimate), 0, 255).astype(np.uint8)
    return out


def compact(mesh: FilledMesh, keep: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``grid.compact_vertices`` for a filled mesh: when every grid vertex is used (the usual case:
    the layer uses the far-side vertices of the torn cells) only the few added vertices are
    renumbered, not the whole grid's faces and edges. keep: (ny-1, nx-1) bool the grid mesh's own
    quads (its first ``photo_faces`` faces). -> (used or None, faces, edges)"""
    # the grid faces use exactly the corners of the kept quads: read that off the (small) quad mask
    # instead of scattering all F*4 corners; only the added faces are scattered
    ny, nx = keep.shape[0] + 1, keep.shape[1] + 1
    grid_used = np.zeros((ny, nx), dtype=bool)
    grid_used[1:, :-1] |= keep
    grid_used[1:, 1:] |= keep
    grid_used[:-1, 1:] |= keep
    grid_used[:-1, :-1] |= keep
    is_used = np.zeros(len(mesh.positions), dtype=bool)
    is_used[:ny * nx] = grid_used.reshape(-1)
    is_used[mesh.faces[mesh.photo_faces:].reshape(-1)] = True
    if not is_used[:ny * nx].all():
        return compact_vertices(len(mesh.positions), mesh.faces, mesh.edges)
    if is_used.all():
        return None, mesh.faces, mesh.edges
    new_index = np.cumsum(is_used, dtype=np.int32)
    new_index -= 1
    faces, edges = mesh.faces.copy(), mesh.edges.copy()
    faces[mesh.photo_faces:] = new_index[faces[mesh.photo_faces:]]
    edges[mesh.photo_edges:] = new_index[edges[mesh.photo_edges:]]
    return np.flatnonzero(is_used).astype(np.int32), faces, edges


@dataclass(frozen=True)
class FilledMesh:
    """A grid mesh plus its background layer and rim, before unused vertices are dropped.

    Vertices: the ny*nx grid vertices, then one per band vertex (the layer), then the rim's.
    positions: (V, 3) float32, depth: (V,) float32, grid_index: (V,) int32 grid vertex each
    vertex belongs to; faces: (F, 4) int32, edges: (E, 2) int32, corner_edges: (F*4,) int32,
    corner_uvs: (F*4, 2) float32, material_index: (F,) int32 (0 photo, 1 extended photo);
    the first photo_faces faces and photo_edges edges are the grid mesh's own.
    """

    positions: np.ndarray
    depth: np.ndarray
    grid_index: np.ndarray
    faces: np.ndarray
    edges: np.ndarray
    corner_edges: np.ndarray
    corner_uvs: np.ndarray
    material_index: np.ndarray
    photo_faces: int
    photo_edges: int


@dataclass(frozen=True)
class _LayerBox:
    """The layer's quads and vertices on the bounding box of its quads (everything the layer touches).

    top, left: the box's first grid row and column; rows, columns: its quad slices;
    keep: (bh, bw) bool the layer's quads; band: (bh+1, bw+1) bool grid vertices with a layer
    vertex; map: (bh+1, bw+1) int32 each box vertex's vertex in the layer's faces (the layer's
    own on the band, else the grid's); band_index: (L,) int32 grid vertex of layer vertex
    ``n_grid + k``; full_keep: (ny-1, nx-1) bool the layer's quads on the whole grid.
    """

    top: int
    left: int
    rows: slice
    columns: slice
    keep: np.ndarray
    band: np.ndarray
    map: np.ndarray
    band_index: np.ndarray
    full_keep: np.ndarray


def _layer_box(bg: Background, keep, torn, tear_threshold, jump_scale) -> _LayerBox | None:
    """The layer's quads (those with a band corner that do not tear on the layer's depth, plus every
    torn cell) and its vertices (band vertices that are a corner of one), numbered ``n_grid + k`` in
    grid order; None when it has no quad."""
    band = bg.band
    ny, nx = band.shape
    # only quads with a band corner can hold the layer: test those within the band's bounding box
    band_rows, band_columns = np.flatnonzero(band.any(axis=1)), np.flatnonzero(band.any(axis=0))
    quad_rows = np.s_[max(band_rows[0] - 1, 0):min(band_rows[-1] + 1, ny - 1)]
    quad_columns = np.s_[max(band_columns[0] - 1, 0):min(band_columns[-1] + 1, nx - 1)]
    corner_window = np.s_[quad_rows.start:quad_rows.stop + 1, quad_columns.start:quad_columns.stop + 1]
    band_part = band[corner_window]
    full_keep = np.zeros_like(keep)
    full_keep[quad_rows, quad_columns] = (
        quad_keep_mask(bg.depth[corner_window], tear_threshold, relative=True, jump_scale=jump_scale)
        & (band_part[1:, :-1] | band_part[1:, 1:] | band_part[:-1, 1:] | band_part[:-1, :-1]))
    # every torn cell gets a layer face, also where the layer still jumps (a continuous slope too
    # steep for the threshold, not an occlusion): through the camera no cell stays open
    full_keep |= torn
    rows, columns = np.flatnonzero(full_keep.any(axis=1)), np.flatnonzero(full_keep.any(axis=0))
    if not len(rows):
        return None
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1
    box_keep = full_keep[top:bottom, left:right]
    # a band vertex none of whose quads holds the layer gets no vertex (nothing to renumber afterwards)
    corner = np.zeros((bottom - top + 1, right - left + 1), dtype=bool)
    corner[1:, :-1] |= box_keep
    corner[1:, 1:] |= box_keep
    corner[:-1, 1:] |= box_keep
    corner[:-1, :-1] |= box_keep
    box_band = band[top:bottom + 1, left:right + 1] & corner
    box_map = (np.arange(top, bottom + 1, dtype=np.int32)[:, None] * np.int32(nx)
               + np.arange(left, right + 1, dtype=np.int32)[None, :])
    band_index = box_map[box_band]  # row by row: grid order
    box_map[box_band] = np.arange(ny * nx, ny * nx + len(band_index), dtype=np.int32)
    return _LayerBox(top, left, np.s_[top:bottom], np.s_[left:right], box_keep, box_band, box_map, band_index,
                     full_keep)


def added_faces_bound(torn: np.ndarray, cells: int | None) -> int:
    """An upper bound of the faces ``add_layer_and_rim`` adds, known before the band is: one rim face
    per border quad side and, with a layer (``cells``: the band width), every quad within cells + 2
    of the torn quads' bounding box (band vertices lie within ``cells`` of a torn quad's corner, and
    every layer quad has a band corner or is torn). torn: (ny-1, nx-1) bool."""
    qy, qx = torn.shape
    bound = 2 * (qx + qy)
    rows, columns = np.flatnonzero(torn.any(axis=1)), np.flatnonzero(torn.any(axis=0))
    if cells is None or not len(rows):
        return bound
    reach = cells + 2
    return bound + ((min(rows[-1] + 1 + reach, qy) - max(rows[0] - reach, 0))
                    * (min(columns[-1] + 1 + reach, qx) - max(columns[0] - reach, 0)))


def add_layer_and_rim(values, grid_positions, keep, torn, bg: Background | None,
                      tear_threshold, jump_scale, xs, ys, width, height, focal, pivot,
                      topology: GridTopology | None = None) -> FilledMesh:
    """The grid mesh of the ``keep`` quads with the background layer (``bg``; None = no layer) and
    the rim appended.

    values: (ny, nx) float32 distance; grid_positions(out): writes the (ny*nx, 3) float32 grid
    vertex positions into the first rows of ``out``; keep, torn: (ny-1, nx-1) bool kept quads and
    quads dropped for a depth jump; topology: the grid's own (``grid.grid_topology_with_edge_ids``)
    with room for the added faces and their edges (``added_faces_bound``), or None to build it
    here. The grid's positions are made here too, in an array sized for the added vertices: the
    added vertices, faces and edges are written in place rather than appended by a copy of the whole
    mesh. The layer's quads and vertices: ``_layer_box``; each quad reuses the grid vertex at
    every corner that is not on the band.
    """
    ny, nx = values.shape
    n_grid = ny * nx
    pixel_x = (xs.astype(np.float64) + 0.5)
    pixel_y = (ys.astype(np.float64) + 0.5)

    def quad_corners(quads):  # (k,) quad indices -> (k, 4) grid vertices, the order grid_topology uses
        top_left = quads + quads // (nx - 1)
        corners = np.empty((len(quads), 4), dtype=top_left.dtype)
        corners[:, 0], corners[:, 1], corners[:, 2], corners[:, 3] = top_left + nx, top_left + nx + 1, top_left + 1, top_left
        return corners

    # the layer: a vertex per band vertex, quads with a band corner that hold together on the layer's depth
    layer = _layer_box(bg, keep, torn, tear_threshold, jump_scale) if bg is not None and bg.band.any() else None
    if layer is not None:
        band_index, layer_keep = layer.band_index, layer.full_keep
        box_quads = np.flatnonzero(layer.keep.reshape(-1)).astype(np.int32)
        box_width = layer.keep.shape[1]
        top_left = box_quads + box_quads // np.int32(box_width)  # box vertex (i, j) of box quad (i, j)
        layer_faces = np.take(layer.map.reshape(-1), np.stack(
            [top_left + np.int32(box_width + 1), top_left + np.int32(box_width + 2), top_left + 1, top_left], -1))
        layer_material = np.where(torn[layer.rows, layer.columns].reshape(-1)[box_quads], 0,
                                  LAYER_MATERIAL_INDEX).astype(np.int32)
        layer_depth = bg.depth.reshape(-1)[band_index]

        def layer_of(vertices):  # grid vertices of layer quads -> the layer's vertex where on the band, else themselves
            row, column = np.divmod(vertices, nx)
            return layer.map[row - layer.top, column - layer.left]
    else:
        band_index = np.zeros(0, dtype=np.int32)
        layer_keep = np.zeros_like(keep)
        layer_faces = np.zeros((0, 4), dtype=np.int32)
        layer_material = np.zeros(0, dtype=np.int32)
        layer_depth = np.zeros(0, dtype=np.float32)

        def layer_of(vertices):
            return vertices
    n_layer = len(band_index)

    def grid_of(vertices):  # photo or layer vertices -> their grid vertex
        return np.where(vertices < n_grid, vertices, band_index[np.clip(vertices - n_grid, 0, max(n_layer - 1, 0))]
                        if n_layer else vertices)

    def depth_of(vertices):
        return np.where(vertices < n_grid, values.reshape(-1)[np.minimum(vertices, n_grid - 1)],
                        layer_depth[np.clip(vertices - n_grid, 0, max(n_layer - 1, 0))] if n_layer else 0)

    # the rim: along every border edge of a kept quad (the photo's surface first, else the layer's)
    q = np.arange(ny - 1, dtype=np.int64) * (nx - 1)
    sides = (  # border quads, their two border corners (corner slots) and the rim quad's corner order
        (np.arange(nx - 1), (3, 2), lambda v, r: (v[0], v[1], r[1], r[0])),                   # top: tl, tr
        ((ny - 2) * (nx - 1) + np.arange(nx - 1), (0, 1), lambda v, r: (r[0], r[1], v[1], v[0])),  # bottom
        (q, (3, 0), lambda v, r: (r[1], v[1], v[0], r[0])),                                  # left: tl, bl
        (q + nx - 2, (2, 1), lambda v, r: (v[1], r[1], r[0], v[0])),                         # right: tr, br
    )
    rim_quads, rim_material = [], []
    for quads, slots, order in sides:
        main_kept = keep.reshape(-1)[quads]
        layer_kept = layer_keep.reshape(-1)[quads] & ~main_kept
        for kept, on_layer in ((main_kept, False), (layer_kept, True)):
            ends = quad_corners(quads[kept].astype(np.int64))[:, list(slots)]
            if on_layer:
                ends = layer_of(ends)
            rim_quads.append((ends, order))
            material = np.where(torn.reshape(-1)[quads[kept]], 0, LAYER_MATERIAL_INDEX) if on_layer else 0
            rim_material.append(np.broadcast_to(np.int32(material), len(ends)).astype(np.int32))
    border = np.unique(np.concatenate([ends.reshape(-1) for ends, _ in rim_quads]))
    n_rim = len(border)
    first_rim = n_grid + n_layer
    rim_faces = [np.stack(order(ends.T, (first_rim + np.searchsorted(border, ends)).T), -1)
                 for ends, order in rim_quads]

    # positions of layer and rim vertices: unproject their pixel (the frame edge for the rim) at their depth
    rim_grid = grid_of(border)
    rim_row, rim_column = np.divmod(rim_grid, nx)
    rim_x, rim_y = pixel_x[rim_column], pixel_y[rim_row]
    rim_x[rim_column == 0], rim_x[rim_column == nx - 1] = 0.0, float(width)
    rim_y[rim_row == 0], rim_y[rim_row == ny - 1] = 0.0, float(height)
    rim_depth = depth_of(border).astype(np.float32)
    layer_row, layer_column = np.divmod(band_index, nx)
    new_x = np.concatenate([pixel_x[layer_column], rim_x])
    new_y = np.concatenate([pixel_y[layer_row], rim_y])
    new_z = np.concatenate([layer_depth, rim_depth]).astype(np.float64)
    all_positions = np.empty((n_grid + len(new_z), 3), dtype=np.float32)
    grid_positions(all_positions)
    new_positions = all_positions[n_grid:]
    new_positions[:, 0] = (new_x - width / 2) / focal * new_z
    new_positions[:, 1] = new_z - pivot
    new_positions[:, 2] = (height / 2 - new_y) / focal * new_z

    # the grid mesh's topology with room for the added faces: they are written in place
    n_photo = int(np.count_nonzero(keep))
    n_extra = len(layer_faces) + sum(len(f) for f in rim_faces)
    if topology is None or len(topology.faces) < n_photo + n_extra:  # every added face has <= 4 new edges
        topology = grid_topology_with_edge_ids(keep, spare_faces=n_extra, spare_edges=4 * n_extra)
    all_faces = topology.faces[:n_photo + n_extra]
    edges, all_corner_edges = topology.edges, topology.corner_edges[:4 * (n_photo + n_extra)]
    np.concatenate([layer_faces, *rim_faces], out=all_faces[n_photo:], casting="unsafe")

    # UVs: pixel centres, the frame edge for rim vertices; every face corner's gathered as one
    # 8-byte (u, v) item in a single pass over all faces (as build._corner_uvs does for the grid)
    vertex_uv = np.empty((first_rim + n_rim, 2), dtype=np.float32)
    grid_uv = vertex_uv[:n_grid].reshape(ny, nx, 2)
    grid_uv[..., 0] = ((xs + 0.5) / width).astype(np.float32)[None, :]
    grid_uv[..., 1] = (1.0 - (ys + 0.5) / height).astype(np.float32)[:, None]
    vertex_uv[n_grid:first_rim] = vertex_uv[band_index]
    vertex_uv[first_rim:, 0] = rim_x / width
    vertex_uv[first_rim:, 1] = 1.0 - rim_y / height
    corner_uvs = np.take(vertex_uv.reshape(-1).view(np.int64), all_faces.reshape(-1)).view(np.float32).reshape(-1, 2)

    material_index = np.zeros(len(all_faces), np.int32)  # zeroed pages: only the added faces' are written
    material_index[n_photo:] = np.concatenate([layer_material, *rim_material])
    grid_index = np.empty(len(vertex_uv), np.int32)
    grid_index[:n_grid] = np.arange(n_grid, dtype=np.int32)
    grid_index[n_grid:first_rim], grid_index[first_rim:] = band_index, rim_grid
    all_edges, all_corner_edges[4 * n_photo:] = _extra_edges(
        topology, layer, grid_of, np.concatenate(rim_faces).astype(np.int64), first_rim + n_rim)
    return FilledMesh(
        positions=all_positions,
        depth=np.concatenate([values.reshape(-1), layer_depth, rim_depth]).astype(np.float32, copy=False),
        grid_index=grid_index,
        faces=all_faces,
        edges=all_edges,
        corner_edges=all_corner_edges,
        corner_uvs=corner_uvs,
        material_index=material_index,
        photo_faces=n_photo, photo_edges=len(edges),
    )


def _extra_edges(topology: GridTopology, layer: _LayerBox | None, grid_of, rim_faces, n_vertices
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Edges of the added faces (the layer's, then the rim's): those the mesh already has are
    reused, the rest appended.

    topology: the grid mesh's (``grid.grid_topology_with_edge_ids``); layer: the layer's quads and
    vertices on its box (None: no layer); ``grid_of`` maps mesh vertices to their grid vertex;
    rim_faces: (R, 4) the rim's faces. The layer is a grid on relabelled vertices, so its
    edges are read off the grid structure (``grid.lattice_edges`` on the layer's box): a
    lattice edge with no band end is the grid mesh's own where that has it, every other one is
    new. Only the few rim faces' edges are deduplicated by sorting; their inner edges are found
    in the grid's or the layer's edge maps by position.
    -> (all edges (E', 2) int32, corner edges of the layer's then the rim's faces (4 F',) int32)
    """
    ny, nx = topology.horizontal.shape[0], topology.vertical.shape[1]
    n_grid, n_edges = ny * nx, len(topology.edges)
    if layer is not None:
        top, left = layer.top, layer.left
        bottom, right = top + layer.keep.shape[0], left + layer.keep.shape[1]
        horizontal, vertical = lattice_edges(layer.keep)
        box_band, box_map = layer.band, layer.map
        reused_h = horizontal & topology.horizontal[top:bottom + 1, left:right] & ~(box_band[:, :-1] | box_band[:, 1:])
        reused_v = vertical & topology.vertical[top:bottom, left:right + 1] & ~(box_band[:-1] | box_band[1:])
        new_h, new_v = horizontal & ~reused_h, vertical & ~reused_v
        n_new_h = int(np.count_nonzero(new_h))
        layer_h = np.cumsum(new_h, dtype=np.int32).reshape(new_h.shape)
        layer_h += n_edges - 1
        np.copyto(layer_h, topology.horizontal_id[top:bottom + 1, left:right], where=reused_h)
        layer_v = np.cumsum(new_v, dtype=np.int32).reshape(new_v.shape)
        layer_v += n_edges + n_new_h - 1
        np.copyto(layer_v, topology.vertical_id[top:bottom, left:right + 1], where=reused_v)
        box_quads = np.flatnonzero(layer.keep.reshape(-1)).astype(np.int32)
        layer_corner_edges = np.empty((len(box_quads), 4), dtype=np.int32)
        quad_corner_edges(box_quads, right - left + 1, layer_h.reshape(-1), layer_v.reshape(-1), layer_corner_edges)
        # the new edges' ends, row by row (horizontal ones, then vertical ones)
        new_layer_pairs = np.empty((n_new_h + int(np.count_nonzero(new_v)), 2), dtype=np.int32)
        new_layer_pairs[:n_new_h, 0], new_layer_pairs[:n_new_h, 1] = box_map[:, :-1][new_h], box_map[:, 1:][new_h]
        new_layer_pairs[n_new_h:, 0], new_layer_pairs[n_new_h:, 1] = box_map[:-1][new_v], box_map[1:][new_v]
    else:
        top = left = 0
        horizontal = vertical = layer_h = layer_v = box_map = None
        new_layer_pairs = np.zeros((0, 2), dtype=np.int32)
        layer_corner_edges = np.zeros((0, 4), dtype=np.int32)

    def edge_id(low, high):  # (k,) mesh vertex pairs, low < high -> (k,) index of an existing edge, else -1
        index = np.full(len(low), -1, dtype=np.int64)
        on_grid = high < n_grid
        row, column = np.divmod(low, nx)
        for step, exists, ids in ((1, topology.horizontal, topology.horizontal_id),
                                  (nx, topology.vertical, topology.vertical_id)):
            at = np.flatnonzero(on_grid & (high - low == step))
            r, c = row[at], column[at]
            inside = (r < exists.shape[0]) & (c < exists.shape[1])
            at, r, c = at[inside], r[inside], c[inside]
            found = exists[r, c]
            index[at[found]] = ids[r[found], c[found]]
        if horizontal is None:
            return index
        # the layer's edges: found by their grid ends' position in its lattice
        todo = np.flatnonzero(index < 0)
        a, b = grid_of(low[todo]), grid_of(high[todo])
        first, second = np.minimum(a, b), np.maximum(a, b)
        row, column = np.divmod(first, nx)
        row, column = row - top, column - left
        for step, exists, ids in ((1, horizontal, layer_h), (nx, vertical, layer_v)):
            at = np.flatnonzero((second - first == step) & (row >= 0) & (column >= 0)
                                & (row < exists.shape[0]) & (column < exists.shape[1]))
            r, c = row[at], column[at]
            found = exists[r, c]
            at, r, c = at[found], r[found], c[found]
            ends = box_map[r, c], (box_map[r, c + 1] if step == 1 else box_map[r + 1, c])
            same = ((np.minimum(*ends) == low[todo][at]) & (np.maximum(*ends) == high[todo][at]))
            index[todo[at[same]]] = ids[r[same], c[same]]
        return index

    first = rim_faces.reshape(-1)
    second = np.roll(rim_faces, -1, axis=1).reshape(-1)
    keys = np.minimum(first, second) * n_vertices + np.maximum(first, second)
    unique, inverse = np.unique(keys, return_inverse=True)
    low, high = np.divmod(unique, n_vertices)
    rim_index = edge_id(low, high) if len(unique) else np.zeros(0, dtype=np.int64)
    new = rim_index < 0
    rim_index[new] = n_edges + len(new_layer_pairs) + np.arange(int(new.sum()))
    new_rim_pairs = np.stack([low[new], high[new]], -1)
    n_layer_edges, n_rim_edges = len(new_layer_pairs), len(new_rim_pairs)
    all_edges = topology.edge_room[:n_edges + n_layer_edges + n_rim_edges]  # no copy of the grid's edges
    all_edges[n_edges:n_edges + n_layer_edges] = new_layer_pairs
    all_edges[n_edges + n_layer_edges:] = new_rim_pairs
    return all_edges, np.concatenate([layer_corner_edges.reshape(-1), rim_index[inverse]]).astype(np.int32)


def _cv2():
    """OpenCV, or one line saying the fill needs it (a depth-map import without it works with fill off)."""
    from ..imageio import import_cv2  # lazily: imageio imports this package

    return import_cv2("the fill behind tears", otherwise="turn Fill off")
