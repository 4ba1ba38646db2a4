"""Depth map -> mesh / point-cloud arrays and the camera that sees them as the photo (numpy only).

Coordinate convention (Blender's front view): +X right, +Z up, the camera looks along +Y.
The object's origin is at the world origin; the camera sits on the -Y axis looking at it.

* perspective: a pinhole camera with horizontal field of view ``fov`` and its principal
  point at the image centre. The pixel at column ``x``, row ``y`` (pixel centre
  ``x + 0.5, y + 0.5``, rows from the top) at camera-axis distance ``z`` becomes::

      f = (W / 2) / tan(fov / 2)                       # focal length in pixels
      X = (x + 0.5 - W / 2) / f * z
      Y = z - pivot                                   # pivot: median distance of the map
      Z = (H / 2 - (y + 0.5)) / f * z

  and the camera sits at ``(0, -pivot, 0)``, so the median depth lies at the origin.
* relief: a plane 1 unit high and ``W / H`` wide in the XZ plane, pixel centres at
  ``X = ((x + 0.5)/W - 0.5) * W/H``, ``Z = 0.5 - (y + 0.5)/H``, pushed towards the camera
  (-Y) by ``nearness * relief_strength * W/H``. Its camera is orthographic (ortho_scale =
  plane width), so the relief lines up with the photo pixel for pixel too.

UVs put each vertex on its pixel centre: ``u = (x + 0.5) / W``, ``v = 1 - (y + 0.5) / H``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import DepthAddonError
from ..settings import DEFAULT_FOV_DEG, BuildSettings
from .depth import camera_distance, nearness, resize_depth
from .fill import (
    Background,
    FillLayer,
    add_layer_and_rim,
    added_faces_bound,
    background,
    compact,
    extend_photo,
    fill_cells,
    hidden_pixels,
)
from .grid import (
    compact_vertices,
    grid_topology,
    grid_topology_with_edge_ids,
    quad_keep_mask,
    sample_indices,
    tear_jump_scale,
)


@dataclass(frozen=True)
class CameraModel:
    """The camera that sees the geometry exactly as the photo (object space, camera looks along +Y)."""

    width: int                 # image width in pixels
    height: int                # image height in pixels
    fov_deg: float             # horizontal field of view (perspective)
    location: tuple[float, float, float]
    clip_start: float
    clip_end: float
    ortho_scale: float | None = None   # relief: orthographic width in scene units; None = perspective

    @property
    def focal_px(self) -> float:
        return (self.width / 2) / math.tan(math.radians(self.fov_deg) / 2)

    def lens_mm(self, sensor_width_mm: float = 36.0) -> float:
        """Focal length for a horizontally fitted sensor of ``sensor_width_mm``."""
        return (sensor_width_mm / 2) / math.tan(math.radians(self.fov_deg) / 2)


@dataclass(frozen=True)
class MeshArrays:
    """A grid mesh of quads, ready for ``mesh.attributes`` + ``foreach_set``.

    positions: (V, 3) float32 object-space vertex positions
    faces: (F, 4) int32 vertex indices per quad (counter-clockwise seen from the camera)
    edges: (E, 2) int32 vertex indices per edge
    corner_edges: (F*4,) int32 edge index of the edge leaving each face corner
    corner_uvs: (F*4, 2) float32 UV of each face corner (its vertex's pixel centre)
    depth: (V,) float32 camera-axis distance (perspective) or nearness in [0, 1] (relief)
    xs: (nx,) int64, ys: (ny,) int64 sampled pixel columns and rows
    grid_index: (V,) int32 index ``row * nx + column`` of each vertex in the sampling grid,
    or None when every grid vertex is kept (then vertex k is grid vertex k). A fill-layer vertex
    has its grid vertex's index, a rim vertex its border vertex's (it sits on the frame edge).
    material_index: (F,) int32 0 = the photo, 1 = the extended photo (the fill layer); None
    without fill. fill: what the extended photo needs (``fill.extend_photo``), None without fill.
    """

    positions: np.ndarray
    faces: np.ndarray
    edges: np.ndarray
    corner_edges: np.ndarray
    corner_uvs: np.ndarray
    depth: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    grid_index: np.ndarray | None
    camera: CameraModel
    material_index: np.ndarray | None = None
    fill: FillLayer | None = None

    @property
    def corner_verts(self) -> np.ndarray:
        """(F*4,) int32 vertex index of every face corner."""
        return self.faces.reshape(-1)

    @property
    def pixels(self) -> np.ndarray:
        """(V, 2) int32 pixel column ``x`` and row ``y`` each vertex sits on."""
        index = self.grid_index if self.grid_index is not None else np.arange(len(self.positions))
        return _grid_pixels(index, self.xs, self.ys)

    @property
    def uvs(self) -> np.ndarray:
        """(V, 2) float32 UV of each vertex: its pixel centre ``((x+0.5)/W, 1-(y+0.5)/H)``."""
        return _pixel_uvs(self.pixels, self.camera.width, self.camera.height)


@dataclass(frozen=True)
class PointArrays:
    """One point per sampled pixel that has depth.

    positions: (N, 3) float32, colors: (N, 3) uint8 sRGB photo colours,
    pixels: (N, 2) int32 (x, y), depth: (N,) float32 as in MeshArrays,
    radii: (N,) float32 point radius: ``point_size`` at the median distance, growing with the
    distance in perspective mode so that every point covers the same pixels through the camera.
    """

    positions: np.ndarray
    colors: np.ndarray
    pixels: np.ndarray
    depth: np.ndarray
    radii: np.ndarray
    camera: CameraModel


def resolve_fov(settings: BuildSettings, exif_fov_deg: float | None = None) -> float:
    """Horizontal FOV in degrees: the setting, else the photo's EXIF value, else DEFAULT_FOV_DEG."""
    for fov in (settings.fov_deg, exif_fov_deg):
        if fov is not None:
            if not 0 < fov < 180:
                raise ValueError(f"field of view must be between 0 and 180 degrees, got {fov}")
            return float(fov)
    return DEFAULT_FOV_DEG


def build_mesh(depth: np.ndarray, settings: BuildSettings, image_size: tuple[int, int] | None = None,
               fov_deg: float | None = None) -> MeshArrays:
    """Grid mesh for a depth map.

    depth: (h, w) depth of kind ``settings.depth_kind``; resampled to ``image_size``
    ``(H, W)`` (the photo's size) when that differs.
    fov_deg: horizontal FOV (perspective); None = ``resolve_fov(settings)``.
    """
    grid = _sample(depth, settings, image_size, fov_deg)
    threshold = settings.tear_threshold if settings.tear else None
    scale = tear_jump_scale(grid.camera.height, grid.camera.width, grid.xs, grid.ys)
    keep = quad_keep_mask(grid.values, threshold, relative=settings.projection == "perspective", jump_scale=scale)
    if not keep.any():
        raise DepthAddonError(_no_faces_reason(grid, settings))
    if uses_fill(settings):  # the fill builds the topology and every corner's UV itself, with its own faces
        return _with_fill(grid, settings, keep, threshold, scale)
    faces, edges, corner_edges = grid_topology(keep)
    corner_uvs = _corner_uvs(faces, grid.xs, grid.ys, grid.camera.width, grid.camera.height)
    used, faces, edges = compact_vertices(grid.values.size, faces, edges)
    positions, values = grid.positions(), grid.values.reshape(-1)
    if used is not None:
        positions, values = positions[used], values[used]
    return MeshArrays(
        positions=positions, faces=faces, edges=edges, corner_edges=corner_edges,
        corner_uvs=corner_uvs,
        depth=values, xs=grid.xs, ys=grid.ys, grid_index=used, camera=grid.camera,
    )


def uses_fill(settings: BuildSettings) -> bool:
    """Whether a build gets the background layer and rim: ``fill`` on, perspective projection
    (a relief is a height field: one sheet, see docs/geometry.md)."""
    return settings.fill and settings.projection == "perspective"


def _torn(grid: _Grid, settings: BuildSettings, keep: np.ndarray) -> tuple[np.ndarray, int | None]:
    """(ny-1, nx-1) bool quads dropped for a depth jump, and the fill's band width in grid cells
    (None without tearing: no layer)."""
    torn = quad_keep_mask(grid.values, None, relative=True) & ~keep
    camera = grid.camera
    return torn, fill_cells(settings.fill_width, camera.height, camera.width, grid.xs, grid.ys) if settings.tear else None


def _background(grid: _Grid, settings: BuildSettings, torn: np.ndarray, cells: int | None) -> Background | None:
    """The band and filled depth behind the ``torn`` quads of ``grid`` (None without tearing)."""
    if cells is None:
        return None
    camera = grid.camera
    return background(grid.values, torn, cells, settings.tear_threshold, grid.xs + 0.5 - camera.width / 2,
                      grid.ys + 0.5 - camera.height / 2, camera.focal_px)


def _with_fill(grid, settings, keep, threshold, scale) -> MeshArrays:
    camera = grid.camera
    torn, cells = _torn(grid, settings, keep)
    # the grid mesh's topology first, with room for every face the layer and rim can add: built at
    # the point the plain mesh builds it, before the fill's own arrays exist, its temporaries reuse
    # freed memory instead of faulting in new pages (measured: ~40% fewer page faults at 1920 x 1080)
    room = added_faces_bound(torn, cells)
    topology = grid_topology_with_edge_ids(keep, spare_faces=room, spare_edges=4 * room)
    bg = _background(grid, settings, torn, cells)
    filled = add_layer_and_rim(grid.values, grid.positions, keep, torn, bg,
                               threshold, scale, grid.xs, grid.ys, camera.width, camera.height,
                               camera.focal_px, -camera.location[1], topology)
    used, faces, edges = compact(filled, keep)
    positions, values, grid_index = filled.positions, filled.depth, filled.grid_index
    if used is not None:
        positions, values, grid_index = positions[used], values[used], grid_index[used]
    layer = hidden_pixels(grid.z_map, bg, grid.xs, grid.ys) if bg is not None and bg.band.any() else None
    return MeshArrays(
        positions=positions, faces=faces, edges=edges, corner_edges=filled.corner_edges,
        corner_uvs=filled.corner_uvs, depth=values, xs=grid.xs, ys=grid.ys, grid_index=grid_index,
        camera=camera, material_index=filled.material_index, fill=layer,
    )


def build_points(rgb: np.ndarray, depth: np.ndarray, settings: BuildSettings,
                 fov_deg: float | None = None) -> PointArrays:
    """Coloured point cloud: one point per sampled pixel with depth (with ``fill_points``, perspective:
    then one per fill-band vertex at the background layer's depth, coloured from the extended photo).

    rgb: (H, W, 3) uint8 photo; depth: (h, w), resampled to (H, W) when different.
    """
    height, width = rgb.shape[:2]
    grid = _sample(depth, settings, (height, width), fov_deg)
    values = grid.values.reshape(-1)
    ok = np.isfinite(values)
    if not ok.any():
        raise DepthAddonError(_NO_DEPTH)
    if ok.all():
        positions, index = grid.positions(), np.arange(values.size)
    else:
        index = np.flatnonzero(ok)
        positions, values = grid.positions()[index], values[index]
    pixels = _grid_pixels(index, grid.xs, grid.ys)
    colors = rgb[pixels[:, 1], pixels[:, 0], :3]
    if settings.fill_points and uses_fill(settings):
        positions, values, pixels, colors = _with_fill_points(grid, settings, rgb, positions, values, pixels, colors)
    if settings.projection == "perspective":
        pivot = -grid.camera.location[1]
        radii = values * np.float32(settings.point_size / pivot)
    else:
        radii = np.full(len(values), settings.point_size, dtype=np.float32)
    return PointArrays(positions=positions, colors=colors, pixels=pixels, depth=values, radii=radii,
                       camera=grid.camera)


def _with_fill_points(grid, settings, rgb, positions, values, pixels, colors):
    """Append a point per band vertex at the layer's depth, coloured from the extended photo."""
    threshold = settings.tear_threshold if settings.tear else None
    scale = tear_jump_scale(grid.camera.height, grid.camera.width, grid.xs, grid.ys)
    keep = quad_keep_mask(grid.values, threshold, relative=True, jump_scale=scale)
    bg = _background(grid, settings, *_torn(grid, settings, keep))
    if bg is None or not bg.band.any():
        return positions, values, pixels, colors
    band_index = np.flatnonzero(bg.band.reshape(-1))
    band_pixels = _grid_pixels(band_index, grid.xs, grid.ys)
    band_depth = bg.depth.reshape(-1)[band_index]
    camera = grid.camera
    band_positions = np.empty((len(band_index), 3), dtype=np.float32)
    scale_xz = band_depth / np.float32(camera.focal_px)
    band_positions[:, 0] = (band_pixels[:, 0] + 0.5 - camera.width / 2) * scale_xz
    band_positions[:, 1] = band_depth + np.float32(camera.location[1])
    band_positions[:, 2] = (camera.height / 2 - (band_pixels[:, 1] + 0.5)) * scale_xz
    extended = extend_photo(rgb, hidden_pixels(grid.z_map, bg, grid.xs, grid.ys))
    return (np.concatenate([positions, band_positions]), np.concatenate([values, band_depth]),
            np.concatenate([pixels, band_pixels]),
            np.concatenate([colors, extended[band_pixels[:, 1], band_pixels[:, 0]]]))


_NO_DEPTH = ("the depth map has no usable values (all NaN or infinite, or <= 0 for metric depth); "
             "check the depth file and its depth kind")


def _no_faces_reason(grid: _Grid, settings: BuildSettings) -> str:
    """Why a grid has no face left, and what to change (an empty object would just look like nothing happened)."""
    if len(grid.xs) < 2 or len(grid.ys) < 2:
        sampled = f" at stride {settings.stride}" if settings.stride is not None else ""
        return (f"a {grid.camera.width}x{grid.camera.height} pixel image gives {len(grid.xs)}x{len(grid.ys)} "
                f"vertices{sampled}, too few for a face; use a smaller stride, a larger image, or output='points'")
    if not np.isfinite(grid.values).any():
        return _NO_DEPTH
    if settings.tear and quad_keep_mask(grid.values, None, relative=False).any():
        return (f"every face was torn apart at depth jumps (tear_threshold={settings.tear_threshold}); "
                "raise tear_threshold or turn tearing off")
    return "no face has depth at all four corners; check the depth map, or use output='points'"


def _grid_pixels(index: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(N,) grid indices -> (N, 2) int32 pixel (x, y)."""
    row, column = np.divmod(index, len(xs))
    return np.stack([xs[column], ys[row]], axis=-1).astype(np.int32)


def _pixel_uvs(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    uvs = np.empty((len(pixels), 2), dtype=np.float32)
    uvs[:, 0] = (pixels[:, 0] + 0.5) / width
    uvs[:, 1] = 1.0 - (pixels[:, 1] + 0.5) / height
    return uvs


def _corner_uvs(grid_faces: np.ndarray, xs: np.ndarray, ys: np.ndarray, width: int, height: int) -> np.ndarray:
    """(F, 4) grid-vertex faces -> (F*4, 2) float32 corner UVs.

    Each (u, v) float32 pair is gathered as one 8-byte item: a single contiguous pass.
    """
    grid_uvs = np.empty((len(ys), len(xs), 2), dtype=np.float32)
    grid_uvs[..., 0] = ((xs + 0.5) / width).astype(np.float32)[None, :]
    grid_uvs[..., 1] = (1.0 - (ys + 0.5) / height).astype(np.float32)[:, None]
    pairs = grid_uvs.reshape(-1).view(np.int64)
    return np.take(pairs, grid_faces.reshape(-1)).view(np.float32).reshape(-1, 2)


@dataclass(frozen=True)
class _Grid:
    values: np.ndarray      # (ny, nx) float32 distance or nearness, NaN = no depth
    xs: np.ndarray          # (nx,) sampled pixel columns
    ys: np.ndarray          # (ny,) sampled pixel rows
    camera: CameraModel
    z_map: np.ndarray | None = None  # (H, W) float32 full-resolution distance (perspective)
    relief_push: float | None = None  # relief: the push towards the camera at nearness 1; None = perspective

    def positions(self, out: np.ndarray | None = None) -> np.ndarray:
        """(ny*nx, 3) float32 vertex positions (module docstring), written into the first rows of
        ``out`` when given (the fill's layer and rim go after them, with no copy of the grid's)."""
        ny, nx = self.values.shape
        positions = (np.empty((ny * nx, 3), dtype=np.float32) if out is None else out[:ny * nx]).reshape(ny, nx, 3)
        width, height = self.camera.width, self.camera.height
        cx = (self.xs.astype(np.float32) + 0.5)[None, :]
        cy = (self.ys.astype(np.float32) + 0.5)[:, None]
        values = self.values
        if self.relief_push is not None:
            plane_width = width / height
            positions[..., 0] = (cx / width - 0.5) * plane_width
            positions[..., 1] = -values * np.float32(self.relief_push)
            positions[..., 2] = 0.5 - cy / height
        else:
            focal = np.float32(self.camera.focal_px)
            positions[..., 0] = (cx - np.float32(width / 2)) / focal * values
            positions[..., 1] = values - np.float32(-self.camera.location[1])
            positions[..., 2] = (np.float32(height / 2) - cy) / focal * values
        return positions.reshape(-1, 3)


def _sample(depth: np.ndarray, settings: BuildSettings, image_size: tuple[int, int] | None,
            fov_deg: float | None) -> _Grid:
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f"depth must be a (H, W) array, got shape {depth.shape}")
    if image_size is not None:
        depth = resize_depth(depth, *image_size)
    height, width = depth.shape
    ys, xs = sample_indices(height, width, settings.resolution, settings.stride)

    if settings.projection == "relief":
        values = nearness(depth, settings.depth_kind, settings.invert_relative)[np.ix_(ys, xs)]
        plane_width = width / height
        distance = 2.0 * max(plane_width, 1.0) + settings.relief_strength * plane_width
        camera = CameraModel(width, height, resolve_fov(settings, fov_deg), (0.0, -distance, 0.0),
                             clip_start=0.01, clip_end=2 * distance + 1.0, ortho_scale=plane_width)
        return _Grid(values.astype(np.float32, copy=False), xs, ys, camera,
                     relief_push=settings.relief_strength * plane_width)
    elif settings.projection == "perspective":
        fov = fov_deg if fov_deg is not None else resolve_fov(settings)
        z_map = camera_distance(depth, settings.depth_kind, settings.near, settings.far, settings.invert_relative)
        values = z_map[np.ix_(ys, xs)]
        step = max(1, int(np.sqrt(z_map.size / 250_000)))  # median of a subsample: fast, resolution-independent
        finite = z_map[::step, ::step][np.isfinite(z_map[::step, ::step])]
        pivot = float(np.median(finite)) if finite.size else 1.0
        z_min = float(np.nanmin(z_map)) if finite.size else 1.0  # the whole map: the camera must not clip it
        z_max = float(np.nanmax(z_map)) if finite.size else 1.0
        camera = CameraModel(width, height, fov, (0.0, -pivot, 0.0),
                             clip_start=min(0.1, 0.5 * z_min), clip_end=max(2.0 * z_max, z_max + 1.0))
        return _Grid(values.astype(np.float32, copy=False), xs, ys, camera, z_map)
    raise ValueError(f"unknown projection {settings.projection!r}; valid: perspective, relief")
