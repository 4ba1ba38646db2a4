"""Depth -> geometry core (numpy only, no bpy, no torch)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depth_addon.geometry import build_mesh, build_points, camera_distance, nearness, resize_depth
from depth_addon.geometry.depth import guess_depth_kind
from depth_addon.geometry.grid import sample_indices
from depth_addon.settings import DEFAULT_FOV_DEG, BuildSettings

pytestmark = pytest.mark.pure

H, W = 30, 45


def smooth_metric_depth(height=H, width=W):
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return 3.0 + 0.5 * np.sin(x / 7.0) + 0.3 * np.cos(y / 5.0)


def project(positions, camera):
    """Pinhole projection of object-space points back to pixel coordinates (inverse of build.py's docstring)."""
    cam = positions - np.asarray(camera.location, dtype=np.float64)
    z = cam[:, 1]
    f = camera.focal_px
    return cam[:, 0] / z * f + camera.width / 2, camera.height / 2 - cam[:, 2] / z * f, z


def face_edge_set(faces):
    pairs = np.stack([faces, np.roll(faces, -1, axis=1)], axis=-1).reshape(-1, 2)
    return {tuple(p) for p in np.sort(pairs, axis=1).tolist()}


def test_sample_indices_resolution_and_stride():
    ys, xs = sample_indices(300, 451, resolution=64)
    assert len(xs) == 64 and len(ys) == round(64 * 300 / 451)
    assert xs[0] == 0 and xs[-1] == 450 and ys[0] == 0 and ys[-1] == 299
    assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) > 0)
    ys, xs = sample_indices(300, 451, resolution=10_000)  # capped at one vertex per pixel
    assert len(xs) == 451 and len(ys) == 300
    ys, xs = sample_indices(300, 451, resolution=64, stride=4)  # stride wins
    assert np.array_equal(xs, np.arange(0, 451, 4)) and np.array_equal(ys, np.arange(0, 300, 4))
    ys, xs = sample_indices(451, 300, resolution=64)  # portrait: the long side is the height
    assert len(ys) == 64 and len(xs) == round(64 * 300 / 451)


def test_vertex_and_face_counts_for_a_resolution():
    depth = np.ones((H, W), np.float32)
    mesh = build_mesh(depth, BuildSettings(resolution=20, depth_kind="metric", fill=False))
    ny, nx = round(20 * H / W), 20
    assert mesh.positions.shape == (ny * nx, 3) and mesh.positions.dtype == np.float32
    assert mesh.faces.shape == ((ny - 1) * (nx - 1), 4)
    assert mesh.corner_edges.shape == (mesh.faces.size,)
    # a full grid has ny*(nx-1) horizontal and (ny-1)*nx vertical edges
    assert len(mesh.edges) == ny * (nx - 1) + (ny - 1) * nx


def test_uvs_hit_pixel_centres():
    mesh = build_mesh(smooth_metric_depth(), BuildSettings(resolution=17, depth_kind="metric", fill=False))
    assert np.all((mesh.uvs > 0) & (mesh.uvs < 1))
    x, y = mesh.pixels[:, 0], mesh.pixels[:, 1]
    np.testing.assert_allclose(mesh.uvs[:, 0], (x + 0.5) / W, atol=1e-7)
    np.testing.assert_allclose(mesh.uvs[:, 1], 1 - (y + 0.5) / H, atol=1e-7)
    np.testing.assert_array_equal(mesh.corner_uvs, mesh.uvs[mesh.faces.ravel()])


def test_perspective_vertices_reproject_onto_their_pixels():
    depth = smooth_metric_depth()
    mesh = build_mesh(depth, BuildSettings(stride=1, depth_kind="metric", fov_deg=50.0, fill=False))
    u, v, z = project(mesh.positions.astype(np.float64), mesh.camera)
    np.testing.assert_allclose(u, mesh.pixels[:, 0] + 0.5, atol=0.01)
    np.testing.assert_allclose(v, mesh.pixels[:, 1] + 0.5, atol=0.01)
    np.testing.assert_allclose(z, depth[mesh.pixels[:, 1], mesh.pixels[:, 0]], rtol=1e-5)
    assert mesh.camera.fov_deg == 50.0
    assert math.isclose(mesh.camera.focal_px, (W / 2) / math.tan(math.radians(25)))


def test_faces_face_the_camera():
    mesh = build_mesh(np.full((H, W), 4.0, np.float32), BuildSettings(resolution=10, depth_kind="metric"))
    p = mesh.positions[mesh.faces]
    normals = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 1])
    assert np.all(normals[:, 1] < 0)  # towards the camera on -Y


def test_inverse_depth_mapping_is_exact_for_true_inverse_depth():
    z_true = smooth_metric_depth().astype(np.float64)
    inverse = (7.0 / z_true + 0.3).astype(np.float32)  # unknown scale and shift, as MiDaS
    near, far = float(z_true.min()), float(z_true.max())
    z = camera_distance(inverse, "inverse", near, far)
    np.testing.assert_allclose(z, z_true, rtol=1e-4)
    t = nearness(inverse, "inverse")
    assert math.isclose(float(t.max()), 1.0) and math.isclose(float(t.min()), 0.0)


def test_relative_picture_lighter_is_nearer_and_invert_flips():
    picture = np.tile(np.linspace(0, 1, W, dtype=np.float32), (H, 1))
    z = camera_distance(picture, "relative", 1.0, 10.0)
    assert math.isclose(float(z[0, -1]), 1.0, rel_tol=1e-6) and math.isclose(float(z[0, 0]), 10.0, rel_tol=1e-5)
    z_inv = camera_distance(picture, "relative", 1.0, 10.0, invert=True)
    assert math.isclose(float(z_inv[0, 0]), 1.0, rel_tol=1e-6)


def test_step_edge_tears_and_no_face_crosses_it():
    depth = np.full((H, W), 2.0, np.float32)
    depth[:, 20:] = 6.0
    settings = BuildSettings(stride=1, depth_kind="metric", tear_threshold=0.1, fill=False)
    torn = build_mesh(depth, settings)
    face_depths = torn.depth[torn.faces]
    assert np.all(face_depths.max(axis=1) == face_depths.min(axis=1))  # every face on one side
    assert (face_depths[:, 0] == 2.0).any() and (face_depths[:, 0] == 6.0).any()
    assert len(torn.faces) == (H - 1) * (W - 2)  # exactly the column of quads across the step is gone
    stretched = build_mesh(depth, settings.with_changes(tear=False))
    assert len(stretched.faces) == (H - 1) * (W - 1)


def test_tearing_leaves_no_loose_vertices_and_consistent_edges():
    rng = np.random.default_rng(0)
    depth = smooth_metric_depth()
    depth[rng.random((H, W)) < 0.05] = 20.0  # isolated spikes: torn out, their vertices dropped
    depth[5, 5] = np.nan                       # missing depth: no vertex there
    mesh = build_mesh(depth, BuildSettings(stride=1, depth_kind="metric", tear_threshold=0.2))
    used = np.zeros(len(mesh.positions), bool)
    used[mesh.faces.ravel()] = True
    assert used.all()
    assert not any((mesh.pixels == (5, 5)).all(axis=1))
    # edges are exactly the faces' edges, each once
    edge_set = {tuple(e) for e in np.sort(mesh.edges, axis=1).tolist()}
    assert len(edge_set) == len(mesh.edges) and edge_set == face_edge_set(mesh.faces)
    # corner k's edge joins corner k and corner k+1
    corner_next = np.roll(mesh.faces, -1, axis=1).ravel()
    ends = np.sort(mesh.edges[mesh.corner_edges], axis=1)
    np.testing.assert_array_equal(ends, np.sort(np.stack([mesh.faces.ravel(), corner_next], 1), axis=1))


def test_points_carry_pixel_colours():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    depth = smooth_metric_depth()
    depth[0, 0] = 0.0  # metric 0 = no depth: no point
    points = build_points(rgb, depth, BuildSettings(stride=1, depth_kind="metric"))
    assert len(points.positions) == H * W - 1
    np.testing.assert_array_equal(points.colors, rgb[points.pixels[:, 1], points.pixels[:, 0]])
    u, v, _ = project(points.positions.astype(np.float64), points.camera)
    np.testing.assert_allclose(u, points.pixels[:, 0] + 0.5, atol=0.01)


def test_relief_is_a_displaced_plane_with_the_image_aspect():
    depth = np.tile(np.linspace(0, 1, W, dtype=np.float32), (H, 1))
    settings = BuildSettings(stride=1, projection="relief", depth_kind="relative", relief_strength=0.5)
    mesh = build_mesh(depth, settings)
    width = W / H
    x, y = mesh.pixels[:, 0], mesh.pixels[:, 1]
    np.testing.assert_allclose(mesh.positions[:, 0], ((x + 0.5) / W - 0.5) * width, atol=1e-6)
    np.testing.assert_allclose(mesh.positions[:, 2], 0.5 - (y + 0.5) / H, atol=1e-6)
    np.testing.assert_allclose(mesh.positions[:, 1], -depth[y, x] * 0.5 * width, atol=1e-6)
    assert mesh.camera.ortho_scale == pytest.approx(width)


def test_resize_depth_maps_pixel_centres():
    ramp = np.tile(np.arange(10, dtype=np.float32), (4, 1))
    up = resize_depth(ramp, 8, 20)
    assert up.shape == (8, 20)
    # pixel centre x' + 0.5 of the output sits at (x' + 0.5) / 2 in the input: value (x' + 0.5)/2 - 0.5
    expected = np.clip((np.arange(20) + 0.5) / 2 - 0.5, 0, 9)
    np.testing.assert_allclose(up[3], expected, atol=1e-6)
    mesh = build_mesh(np.full((15, 22), 3.0, np.float32), BuildSettings(stride=1, depth_kind="metric", fill=False),
                      image_size=(H, W))
    assert mesh.camera.width == W and mesh.camera.height == H and len(mesh.positions) == H * W


def test_default_fov_and_depth_kind_guess():
    mesh = build_mesh(np.ones((H, W), np.float32), BuildSettings(resolution=8, depth_kind="metric"))
    assert mesh.camera.fov_deg == DEFAULT_FOV_DEG
    assert guess_depth_kind("a/b.EXR") == "metric" and guess_depth_kind("d.npy") == "metric"
    assert guess_depth_kind("d.png") == "relative"


def test_invalid_settings_name_the_problem():
    from depth_addon.errors import DepthAddonError

    with pytest.raises(DepthAddonError, match="near < far"):
        BuildSettings(near=5.0, far=2.0)
    with pytest.raises(DepthAddonError, match="resolution"):
        BuildSettings().with_changes(resolution=1)
    with pytest.raises(TypeError, match="unknown setting"):
        BuildSettings().with_changes(resolutoin=5)


def test_tearing_judges_slope_not_resolution():
    height, width = 300, 600
    x = np.tile(np.arange(width, dtype=np.float32), (height, 1))
    slope = 1.0 + 9.0 * x / width  # smooth but steep: 28% per face at resolution 32, yet never a tear
    step = np.where(x < 300, 2.0, 6.0).astype(np.float32)  # a real discontinuity
    for resolution in (32, 128, 512):
        settings = BuildSettings(resolution=resolution, depth_kind="metric", tear_threshold=0.05, fill=False)
        smooth = build_mesh(slope, settings)
        assert len(smooth.faces) == (len(smooth.xs) - 1) * (len(smooth.ys) - 1), resolution
        torn = build_mesh(step, settings)
        assert len(torn.faces) == (len(torn.xs) - 2) * (len(torn.ys) - 1), resolution


def test_no_geometry_raises_an_error_that_names_the_fix():
    from depth_addon.errors import DepthAddonError

    metric = BuildSettings(stride=1, depth_kind="metric", fill=False)
    with pytest.raises(DepthAddonError, match="1x5 vertices.*output='points'"):
        build_mesh(np.ones((5, 1), np.float32), metric)  # a one-pixel-wide image: no quad fits
    with pytest.raises(DepthAddonError, match="stride 8"):
        build_mesh(np.ones((5, 7), np.float32), metric.with_changes(stride=8))
    for bad in (np.nan, np.inf, 0.0):
        with pytest.raises(DepthAddonError, match="no usable values"):
            build_mesh(np.full((H, W), bad, np.float32), metric)
        with pytest.raises(DepthAddonError, match="no usable values"):
            build_points(np.zeros((H, W, 3), np.uint8), np.full((H, W), bad, np.float32), metric)
    checkerboard = 1.0 + 4.0 * (np.indices((H, W)).sum(axis=0) % 2).astype(np.float32)
    with pytest.raises(DepthAddonError, match="raise tear_threshold or turn tearing off"):
        build_mesh(checkerboard, metric)
    assert len(build_mesh(checkerboard, metric.with_changes(tear=False)).faces) == (H - 1) * (W - 1)
    with pytest.raises(DepthAddonError, match="no face has depth at all four corners"):
        build_mesh(np.where(checkerboard > 1, np.nan, 2.0).astype(np.float32), metric)


def test_camera_never_clips_the_nearest_pixel():
    depth = np.full((1000, 1000), 5.0, np.float32)
    depth[1, 1] = 0.05  # not in the subsample the pivot is taken from
    mesh = build_mesh(depth, BuildSettings(resolution=8, depth_kind="metric"))
    assert mesh.camera.clip_start <= 0.05 and mesh.camera.clip_end >= 5.0


@pytest.mark.pure
@pytest.mark.parametrize("fov", [0.0, 171.0, 179.0])
def test_fov_beyond_what_a_blender_camera_matches_is_refused(fov):
    from depth_addon.errors import DepthAddonError

    with pytest.raises(DepthAddonError, match="at most 170 degrees"):
        BuildSettings(fov_deg=fov)
    assert BuildSettings(fov_deg=170.0).fov_deg == 170.0
