"""The background fill behind tears and the rim (numpy + OpenCV, no bpy)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depth_addon.geometry import build_mesh, build_points
from depth_addon.geometry.fill import LAYER_MATERIAL_INDEX, extend_photo
from depth_addon.settings import BuildSettings

pytestmark = pytest.mark.pure

H, W = 90, 120
FOV = 55.0
BOX = (slice(25, 65), slice(40, 80))


def tilted_plane(height=H, width=W, fov=FOV):
    """A plane seen through the pinhole camera: 1/z is affine in the normalised image coordinates."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    focal = (width / 2) / math.tan(math.radians(fov) / 2)
    return (1.0 / (0.15 + 0.04 * (x + 0.5 - width / 2) / focal + 0.03 * (y + 0.5 - height / 2) / focal)
            ).astype(np.float32)


def box_in_front(near=2.0):
    depth = tilted_plane()
    depth[BOX] = near
    return depth


def settings(**changes):
    return BuildSettings(depth_kind="metric", stride=1, fov_deg=FOV, **changes)


def layer_vertices(mesh, depth):
    """(the layer's own vertices: behind what the photo shows at their pixel,
    the far-side vertices its faces share with the photo's surface)"""
    visible = depth[mesh.pixels[:, 1], mesh.pixels[:, 0]]
    behind = mesh.depth > visible * (1 + 1e-4)
    layer_faces = behind[mesh.faces].any(axis=1)
    on_layer = np.zeros(len(mesh.positions), bool)
    on_layer[mesh.faces[layer_faces].ravel()] = True
    return np.flatnonzero(behind), np.flatnonzero(on_layer & ~behind)


def test_band_lies_on_the_near_side_and_reaches_the_fill_width():
    depth = box_in_front()
    mesh = build_mesh(depth, settings(fill_width=0.1))
    own, shared = layer_vertices(mesh, depth)
    pixels = mesh.pixels[own]
    inside = np.zeros((H, W), bool)
    inside[BOX] = True
    assert inside[pixels[:, 1], pixels[:, 0]].all()  # the layer's own vertices sit behind the box only
    assert len(shared) > 0 and not inside[mesh.pixels[shared, 1], mesh.pixels[shared, 0]].any()  # far-side joins
    # 10% of the longer side = 12 pixels in from the box's outline, not further
    distance_in = np.minimum.reduce([pixels[:, 0] - 40, 79 - pixels[:, 0], pixels[:, 1] - 25, 64 - pixels[:, 1]])
    assert distance_in.max() == 12 and distance_in.min() == 0


def test_filled_depth_continues_the_far_plane_and_ignores_the_near_side():
    plane = tilted_plane()
    for near in (1.5, 3.0):  # the near side's depth must not change the background
        depth = box_in_front(near)
        mesh = build_mesh(depth, settings(fill_width=0.1))
        own, _ = layer_vertices(mesh, depth)
        truth = plane[mesh.pixels[own, 1], mesh.pixels[own, 0]]
        error = np.abs(mesh.depth[own] - truth) / np.ptp(plane)
        assert error.max() < 1e-3, error.max()
        # and the vertices are on the plane in 3D, not only in their depth attribute
        np.testing.assert_allclose(mesh.positions[own, 1] - mesh.positions[own, 1].min(),
                                   truth - truth.min(), atol=1e-3 * np.ptp(plane))


def test_layer_joins_the_far_side_without_a_crack_and_the_mesh_is_valid():
    mesh = build_mesh(box_in_front(), settings())
    # no two vertices at one place: the layer reuses the far-side vertices instead of copying them
    assert len(np.unique(mesh.positions, axis=0)) == len(mesh.positions)
    # edges unique, every face corner's edge joins that corner to the next, every edge used
    edges = np.sort(mesh.edges, axis=1)
    assert len(np.unique(edges, axis=0)) == len(edges)
    corners = mesh.faces
    following = np.roll(corners, -1, axis=1)
    corner_edges = mesh.edges[mesh.corner_edges.reshape(-1, 4)]
    assert (((corner_edges[..., 0] == corners) & (corner_edges[..., 1] == following))
            | ((corner_edges[..., 0] == following) & (corner_edges[..., 1] == corners))).all()
    assert len(np.unique(mesh.corner_edges)) == len(mesh.edges)
    # the layer's faces (those with a vertex behind the box) share edges with the far side's faces all
    # along the box's outline: one per grid edge of the ring just outside it
    depth = box_in_front()
    behind = mesh.depth > depth[mesh.pixels[:, 1], mesh.pixels[:, 0]] * (1 + 1e-4)
    face_on_layer = np.repeat(behind[mesh.faces].any(axis=1), 4)
    joins = set(mesh.corner_edges[face_on_layer].tolist()) & set(mesh.corner_edges[~face_on_layer].tolist())
    assert len(joins) >= 2 * (40 + 40) - 4


def projected_area(mesh):
    """Area in pixels of every face projected through the camera (shoelace formula)."""
    camera = mesh.camera
    relative = mesh.positions.astype(np.float64) - np.asarray(camera.location)
    x = relative[:, 0] / relative[:, 1] * camera.focal_px + camera.width / 2
    y = camera.height / 2 - relative[:, 2] / relative[:, 1] * camera.focal_px
    fx, fy = x[mesh.faces], y[mesh.faces]
    return 0.5 * np.abs((fx * np.roll(fy, -1, 1) - np.roll(fx, -1, 1) * fy).sum(axis=1))


@pytest.mark.parametrize("depth", ["box", "flat"])
def test_through_the_camera_the_photo_surface_layer_and_rim_cover_the_frame(depth):
    values = box_in_front() if depth == "box" else np.full((H, W), 4.0, np.float32)
    mesh = build_mesh(values, settings())
    on_photo = mesh.material_index == 0
    area = projected_area(mesh)
    if depth == "flat":  # no tear: the grid covers [0.5, W-0.5] x [0.5, H-0.5], the rim the rest of the frame
        assert mesh.material_index.max() == 0
        assert area.sum() == pytest.approx(W * H, rel=1e-5)
    else:
        # the photo's faces and the layer's faces over the torn cells tile the frame exactly once;
        # the layer's faces behind the box add their area on top
        plain = build_mesh(values, settings(fill=False))
        torn_cells = (H - 1) * (W - 1) - len(plain.faces)
        assert torn_cells > 0
        layer_area = area[~on_photo].sum()
        assert area[on_photo].sum() + layer_area >= W * H * (1 - 1e-5)
    without = build_mesh(values, settings(fill=False))
    assert projected_area(without).sum() < W * H - (W + H) / 2  # the half-pixel margin the rim closes


def test_no_layer_without_tearing_and_none_in_relief():
    depth = box_in_front()
    stretched = build_mesh(depth, settings(tear=False))
    assert stretched.fill is None and stretched.material_index.max() == 0  # rim only
    relief = build_mesh(depth, BuildSettings(depth_kind="metric", stride=1, projection="relief"))
    assert relief.material_index is None and relief.fill is None  # a relief stays one height-field sheet
    with pytest.raises(Exception, match="fill_width"):
        settings(fill_width=0.0)
    with pytest.raises(Exception, match="fill_width"):
        settings(fill_width=float("nan"))


def photo_with_green_box():
    y, x = np.mgrid[0:H, 0:W]
    rgb = np.stack([(x * 2) % 256, 255 - (y * 2) % 256, np.full((H, W), 200)], -1).astype(np.uint8)
    rgb[..., 1] //= 4  # the far side is low in green
    rgb[BOX] = (0, 255, 0)
    return rgb


def test_extended_photo_takes_its_colour_from_the_far_side_only():
    rgb = photo_with_green_box()
    mesh = build_mesh(box_in_front(), settings(fill_width=0.1))
    layer = mesh.fill
    assert layer is not None and layer.hidden.any()
    inside = np.zeros((H, W), bool)
    inside[BOX] = True
    assert not (layer.hidden & ~inside).any()   # only the box's pixels are hidden ...
    assert not (layer.source & inside).any()    # ... and none of them gives colour
    extended = extend_photo(rgb, layer)
    np.testing.assert_array_equal(extended[~layer.hidden], rgb[~layer.hidden])  # seen pixels unchanged
    filled = extended[layer.hidden].astype(int)
    assert filled[:, 1].max() <= 64 + 2  # no green from the box: the far side's green is <= 63
    # and the filled colours are near the far side's around them (the blue channel is 200 everywhere)
    assert np.abs(filled[:, 2] - 200).max() <= 2


def test_hidden_pixels_follow_the_full_resolution_depth_on_a_coarse_grid():
    depth = box_in_front()
    mesh = build_mesh(depth, BuildSettings(depth_kind="metric", stride=4, fov_deg=FOV, tear_threshold=0.05))
    layer = mesh.fill
    inside = np.zeros((H, W), bool)
    inside[BOX] = True
    assert not (layer.hidden & ~inside).any()  # a far pixel is never overwritten, whatever its grid vertex
    assert layer.hidden[BOX].mean() > 0.3       # the box's pixels behind the band are


def test_sample_depth_every_cell_is_covered_and_the_layer_is_behind():
    from conftest import SAMPLES
    from depth_addon.imageio import read_depth

    depth = read_depth(SAMPLES / "chelsea_depth.png")
    mesh = build_mesh(depth, BuildSettings(depth_kind="relative"))
    plain = build_mesh(depth, BuildSettings(depth_kind="relative", fill=False))
    area = projected_area(mesh)
    # every grid cell is covered by a photo face or a layer face: the projected area reaches the frame
    assert area.sum() >= 451 * 300 * (1 - 1e-5)
    assert len(plain.faces) < 299 * 450  # the sample depth does tear
    assert (mesh.material_index == LAYER_MATERIAL_INDEX).any()


def test_points_get_the_filled_background_behind_a_setting():
    rgb = photo_with_green_box()
    depth = box_in_front()
    plain = build_points(rgb, depth, settings())
    filled = build_points(rgb, depth, settings(fill_points=True))
    extra = len(filled.positions) - len(plain.positions)
    assert extra > 0
    behind = filled.depth[len(plain.positions):]
    truth = tilted_plane()[filled.pixels[len(plain.positions):, 1], filled.pixels[len(plain.positions):, 0]]
    np.testing.assert_allclose(behind, truth, rtol=1e-3)
    assert filled.colors[len(plain.positions):, 1].max() <= 66  # coloured from the far side
    assert len(filled.radii) == len(filled.positions)


def test_a_grid_finer_than_the_fit_resolution_is_fitted_coarse_and_stays_exact_on_a_plane():
    from depth_addon.geometry.fill import FIT_RESOLUTION

    height, width = 300, 2 * FIT_RESOLUTION + 100  # fitted on every third vertex
    plane = tilted_plane(height, width)
    depth = plane.copy()
    depth[100:200, 300:700] = 2.0
    mesh = build_mesh(depth, BuildSettings(depth_kind="metric", stride=1, fov_deg=FOV, fill_width=0.02))
    own, _ = layer_vertices(mesh, depth)
    assert len(own) > 1000
    truth = plane[mesh.pixels[own, 1], mesh.pixels[own, 0]]
    assert (np.abs(mesh.depth[own] - truth) / np.ptp(plane)).max() < 1e-3


def test_corner_uvs_are_pixel_centres_and_the_frame_edge_on_the_rim():
    mesh = build_mesh(box_in_front(), settings())
    corners = mesh.faces.reshape(-1)
    expected = mesh.uvs[corners]  # each vertex's own pixel centre
    on_frame = ((np.abs(mesh.corner_uvs) < 1e-7) | (np.abs(mesh.corner_uvs - 1) < 1e-7)).any(axis=1)
    np.testing.assert_array_equal(mesh.corner_uvs[~on_frame], expected[~on_frame])
    # the rim's outer corners lie on the frame edge, half a pixel out from their vertex's centre
    offset = np.abs(mesh.corner_uvs[on_frame] - expected[on_frame]) * (W, H)
    assert on_frame.sum() == 4 * 2 * (W - 1 + H - 1) / 2 and np.allclose(offset.max(axis=1), 0.5, atol=1e-4)


def test_extended_photo_png_decodes_to_its_pixels():
    import io

    import cv2
    from PIL import Image

    from depth_addon.png import encode_rgb_png

    rng = np.random.default_rng(0)
    for shape in ((1, 1, 3), (7, 5, 3), (90, 120, 3)):
        rgb = rng.integers(0, 256, shape, dtype=np.uint8)
        data = encode_rgb_png(rgb)
        np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1], rgb)
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), rgb)
    with pytest.raises(ValueError, match="uint8"):
        encode_rgb_png(np.zeros((2, 2, 4), np.uint8))


def test_extended_photo_of_a_photo_a_few_pixels_high():
    from depth_addon.geometry.fill import FillLayer

    rgb = np.zeros((3, 40, 3), np.uint8)
    rgb[:, :20] = (200, 100, 50)  # the far side, the only colour source
    hidden = np.zeros((3, 40), bool)
    hidden[:, 20:24] = True
    source = np.zeros((3, 40), bool)
    source[:, :18] = True
    out = extend_photo(rgb, FillLayer(hidden, source))
    np.testing.assert_array_equal(out[hidden], np.broadcast_to((200, 100, 50), (12, 3)))
    np.testing.assert_array_equal(out[~hidden], rgb[~hidden])


@pytest.mark.parametrize("case", ["box", "sample"])
def test_the_room_made_for_the_layer_and_rim_holds_them(case):
    """The grid's topology is built before the band with room for the added faces (``added_faces_bound``);
    a bound too small would only cost a second build, so check it holds."""
    from conftest import SAMPLES
    from depth_addon.geometry import build as build_module
    from depth_addon.geometry.fill import added_faces_bound
    from depth_addon.imageio import read_depth

    if case == "box":
        depth, chosen = box_in_front(), settings()
    else:
        depth, chosen = read_depth(SAMPLES / "chelsea_depth.png"), BuildSettings(depth_kind="relative")
    filled = build_mesh(depth, chosen)
    plain = build_mesh(depth, chosen.with_changes(fill=False))
    grid = build_module._sample(depth, chosen, None, None)
    scale = build_module.tear_jump_scale(grid.camera.height, grid.camera.width, grid.xs, grid.ys)
    keep = build_module.quad_keep_mask(grid.values, chosen.tear_threshold, relative=True, jump_scale=scale)
    added = len(filled.faces) - len(plain.faces)
    assert 0 < added <= added_faces_bound(*build_module._torn(grid, chosen, keep))
