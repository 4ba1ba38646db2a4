"""Blender layer and public API in the real bpy module (marker ``blender``)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import point_clouds_here, point_count, point_object_type, require_point_clouds
from depth_addon.settings import BuildSettings

pytestmark = pytest.mark.blender

PHOTO_H, PHOTO_W = 300, 451  # samples/chelsea.jpg


def metric_depth(height=PHOTO_H, width=PHOTO_W):
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return 4.0 + 0.3 * np.sin(x / 60.0) + 0.2 * np.cos(y / 45.0)  # gentle: no face tears at 64 vertices


def attribute(data, name, prop, width):
    attr = data.attributes[name]
    values = np.empty(len(attr.data) * width, dtype=np.float32)
    attr.data.foreach_get(prop, values)
    return values.reshape(-1, width) if width > 1 else values


def int_attribute(data, name, width=1):
    attr = data.attributes[name]
    values = np.empty(len(attr.data) * width, dtype=np.int32)
    attr.data.foreach_get("value", values)
    return values.reshape(-1, width) if width > 1 else values


def datablock_counts():
    import bpy

    kinds = ("objects", "meshes", "pointclouds", "materials", "images", "cameras", "node_groups")
    return {kind: len(getattr(bpy.data, kind)) for kind in kinds}


def import_sample(sample_photo, depth=None, **overrides):
    from depth_addon import api

    overrides.setdefault("set_render_resolution", True)
    return api.image_to_object(str(sample_photo), depth=metric_depth() if depth is None else depth,
                               depth_kind="metric", **overrides)


def test_an_import_decodes_the_photo_once_and_reads_its_exif_once(sample_photo, monkeypatch):
    from pathlib import Path

    from PIL import Image

    opened, real_open = [], Image.open

    def counting_open(fp, *args, **kwargs):
        opened.append(Path(fp).name)
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    import_sample(sample_photo, resolution=16)
    # read_image decodes it; read_exif reads the header for the field of view and the orientation
    assert opened == [sample_photo.name, sample_photo.name]
    opened.clear()
    import_sample(sample_photo, resolution=16, fov_deg=40.0)
    assert opened == [sample_photo.name, sample_photo.name]  # the orientation is still needed


def test_counts_uvs_and_datablocks(sample_photo):
    result = import_sample(sample_photo, resolution=64, tear=False, fill=False)
    mesh = result.object.data
    nx, ny = 64, round(64 * PHOTO_H / PHOTO_W)
    assert (len(mesh.vertices), len(mesh.polygons)) == (nx * ny, (nx - 1) * (ny - 1))
    assert result.object.name == "chelsea" and result.image.filepath.endswith("chelsea.jpg")
    assert result.image.packed_file is None  # the photo stays a reference to its file
    assert result.depth_image.packed_file is not None and result.depth_image.is_float
    assert result.object.active_material.node_tree.nodes["Image Texture"].image == result.image
    # UVs: each corner's UV is its vertex's pixel centre
    uv = attribute(mesh, "UVMap", "vector", 2)
    assert mesh.uv_layers.active.name == "UVMap"
    corner_vert = int_attribute(mesh, ".corner_vert")
    assert np.all((uv > 0) & (uv < 1))
    px = uv[:, 0] * PHOTO_W - 0.5
    py = (1 - uv[:, 1]) * PHOTO_H - 0.5
    np.testing.assert_allclose(px, np.round(px), atol=1e-3)
    np.testing.assert_allclose(py, np.round(py), atol=1e-3)
    per_vertex = {}
    for v, u in zip(corner_vert.tolist(), map(tuple, uv.round(6).tolist()), strict=True):
        assert per_vertex.setdefault(v, u) == u
    assert not mesh.validate(verbose=True)  # validate() returns True when it had to fix something


def test_vertices_reproject_through_the_camera(sample_photo):
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    depth = metric_depth()
    result = import_sample(sample_photo, depth=depth, stride=3, fov_deg=47.0, fill=False)
    scene, obj, camera = bpy.context.scene, result.object, result.camera
    assert (scene.render.resolution_x, scene.render.resolution_y) == (PHOTO_W, PHOTO_H)
    assert camera.data.sensor_fit == "HORIZONTAL"
    assert camera.data.angle_x == pytest.approx(np.radians(47.0), rel=1e-6)
    positions = attribute(obj.data, "position", "vector", 3)
    uv = attribute(obj.data, "UVMap", "vector", 2)
    corner_vert = int_attribute(obj.data, ".corner_vert")
    vertex_uv = np.empty((len(positions), 2), np.float32)
    vertex_uv[corner_vert] = uv
    pixel_x = np.round(vertex_uv[:, 0] * PHOTO_W - 0.5)
    pixel_y = np.round((1 - vertex_uv[:, 1]) * PHOTO_H - 0.5)
    # every vertex, through the camera's own view and projection matrices
    depsgraph = bpy.context.evaluated_depsgraph_get()
    projection = np.array(camera.calc_matrix_camera(depsgraph, x=PHOTO_W, y=PHOTO_H))
    to_camera = np.array(camera.matrix_world.inverted() @ obj.matrix_world)
    homogeneous = np.c_[positions.astype(np.float64), np.ones(len(positions))]
    in_camera = homogeneous @ to_camera.T
    clip = in_camera @ projection.T
    ndc = clip[:, :2] / clip[:, 3:4]
    np.testing.assert_allclose((ndc[:, 0] + 1) / 2 * PHOTO_W, pixel_x + 0.5, atol=0.01)
    np.testing.assert_allclose((1 - ndc[:, 1]) / 2 * PHOTO_H, pixel_y + 0.5, atol=0.01)
    np.testing.assert_allclose(-in_camera[:, 2], depth[pixel_y.astype(int), pixel_x.astype(int)], rtol=1e-5)
    # and a sample through bpy_extras' world_to_camera_view (uses the scene's render size)
    for i in range(0, len(positions), 97):
        ndc = world_to_camera_view(scene, camera, obj.matrix_world @ Vector(positions[i]))
        assert ndc.x * PHOTO_W == pytest.approx(pixel_x[i] + 0.5, abs=0.01)
        assert (1 - ndc.y) * PHOTO_H == pytest.approx(pixel_y[i] + 0.5, abs=0.01)
        assert ndc.z == pytest.approx(float(depth[int(pixel_y[i]), int(pixel_x[i])]), rel=1e-5)
    stored = attribute(obj.data, "depth", "value", 1)
    np.testing.assert_allclose(stored, depth[pixel_y.astype(int), pixel_x.astype(int)], rtol=1e-6)


def test_relief_camera_is_orthographic_and_lines_up(sample_photo):
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    result = import_sample(sample_photo, projection="relief", stride=25)
    assert result.camera.data.type == "ORTHO"
    positions = attribute(result.object.data, "position", "vector", 3)
    ndc = [world_to_camera_view(bpy.context.scene, result.camera, Vector(p)) for p in positions]
    # relief vertices sit at pixel centres in X/Z, so the orthographic view maps them back to them
    xs = np.array([n.x for n in ndc]) * PHOTO_W - 0.5
    np.testing.assert_allclose(xs, np.round(xs), atol=0.01)


def test_step_edge_tears_in_blender(sample_photo):
    depth = np.full((PHOTO_H, PHOTO_W), 2.0, np.float32)
    depth[:, 200:] = 5.0
    result = import_sample(sample_photo, depth=depth, stride=4, tear_threshold=0.1)
    mesh = result.object.data
    vertex_depth = attribute(mesh, "depth", "value", 1)
    corner_vert = int_attribute(mesh, ".corner_vert").reshape(-1, 4)
    face_depths = vertex_depth[corner_vert]
    assert np.all(face_depths.min(axis=1) == face_depths.max(axis=1))
    assert not mesh.validate(verbose=True)


def test_point_cloud_colours_equal_image_pixels(sample_photo):
    import bpy

    from depth_addon import api
    from depth_addon.imageio import read_image

    result = import_sample(sample_photo, output="points", stride=3, point_size=0.02)
    cloud = result.object.data
    assert result.object.type == point_object_type()
    assert isinstance(cloud, bpy.types.PointCloud if point_clouds_here() else bpy.types.Mesh)
    ys, xs = np.arange(0, PHOTO_H, 3), np.arange(0, PHOTO_W, 3)
    assert point_count(result.object) == len(ys) * len(xs)
    colors = attribute(cloud, "Col", "color_srgb", 4)
    rgb = read_image(sample_photo)
    expected = rgb[np.ix_(ys, xs)].reshape(-1, 3)
    np.testing.assert_array_equal(np.round(colors[:, :3] * 255).astype(np.uint8), expected)
    # radius = point_size at the median distance, proportional to distance: same size through the camera
    radius, distance = attribute(cloud, "radius", "value", 1), attribute(cloud, "depth", "value", 1)
    np.testing.assert_allclose(radius / distance, 0.02 / np.median(metric_depth()[::3, ::3]), rtol=1e-3)
    api.set_point_size(result.object, 0.04)
    np.testing.assert_allclose(attribute(cloud, "radius", "value", 1), 2 * radius, rtol=1e-6)
    assert '"point_size": 0.04' in result.object["depth_addon_settings"]
    material = result.object.active_material
    assert material.node_tree.nodes["Attribute"].attribute_name == "Col"


def test_glb_export_reimports_with_the_same_vertex_count(sample_photo, tmp_path):
    import bpy

    from depth_addon.blender.export import export_scene

    result = import_sample(sample_photo, resolution=40)
    n_vertices = len(result.object.data.vertices)
    export_scene(tmp_path / "out.glb", result)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(tmp_path / "out.glb"))
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    assert len(meshes) == 1 and len(meshes[0].data.vertices) == n_vertices
    assert [o.type for o in bpy.data.objects].count("CAMERA") == 1


def test_remesh_changes_resolution_without_the_network(sample_photo, tmp_path):
    import bpy

    from depth_addon import api

    depth = metric_depth()
    result = import_sample(sample_photo, depth=depth, resolution=32)
    fov_deg = np.degrees(result.camera.data.angle_x)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "scene.blend"))
    obj = bpy.data.objects["chelsea"]
    api.remesh(obj, resolution=64)
    nx, ny = 64, round(64 * PHOTO_H / PHOTO_W)
    assert len(obj.data.vertices) == nx * ny + 2 * (nx + ny) - 4  # the grid and the fill's rim (no tear here)
    # the stored depth survives the save exactly (full float), so the rebuilt mesh is exact too
    from depth_addon.blender.datablocks import load_depth

    np.testing.assert_array_equal(load_depth(obj["depth_addon_depth"]), depth)
    assert obj["depth_addon_fov_deg"] == pytest.approx(fov_deg)
    api.remesh(obj, fov_deg=30.0)
    assert obj["depth_addon_camera"].data.angle_x == pytest.approx(np.radians(30.0))
    with pytest.raises(Exception, match="point"):
        api.remesh(obj, output="points")


def test_remesh_in_edit_mode_says_what_to_do(sample_photo):
    import bpy

    from depth_addon import api
    from depth_addon.errors import DepthAddonError

    result = import_sample(sample_photo, resolution=16)
    count = len(result.object.data.vertices)
    bpy.ops.object.mode_set(mode="EDIT")
    with pytest.raises(DepthAddonError, match="Edit Mode; switch to Object Mode"):
        api.remesh(result.object, resolution=32)
    bpy.ops.object.mode_set(mode="OBJECT")
    assert len(result.object.data.vertices) == count


def test_remesh_point_cloud(sample_photo):
    import bpy

    from depth_addon import api

    result = import_sample(sample_photo, output="points", stride=10)
    before = point_count(result.object)
    duplicate = result.object.copy()  # a linked duplicate (Alt+D) shares the point cloud
    bpy.context.collection.objects.link(duplicate)
    api.remesh(result.object, stride=5)
    assert point_count(result.object) > 3 * before
    assert result.object.active_material is not None
    assert duplicate.name in bpy.data.objects and duplicate.data == result.object.data  # kept, and rebuilt too
    assert len(bpy.data.pointclouds) == (1 if point_clouds_here() else 0)


def test_failure_leaves_no_datablocks(sample_photo):
    import bpy

    from depth_addon import api

    before = datablock_counts()
    removed_collection = bpy.data.collections.new("removed")  # passes the door, fails when linking
    bpy.data.collections.remove(removed_collection)
    for output in ("mesh", "points"):
        with pytest.raises(ReferenceError):
            api.image_to_object(str(sample_photo), depth=metric_depth(), depth_kind="metric", output=output,
                                collection=removed_collection, resolution=16)
        assert datablock_counts() == before
    # a failing second import of a photo leaves the first import's image alone
    first = import_sample(sample_photo, resolution=16)
    before = datablock_counts()
    with pytest.raises(ReferenceError):
        api.image_to_object(str(sample_photo), depth=metric_depth(), depth_kind="metric",
                            collection=removed_collection, resolution=16)
    assert datablock_counts() == before and first.object.active_material.node_tree.nodes["Image Texture"].image


def test_rotated_depth_map_is_refused(sample_photo):
    from depth_addon.errors import DepthAddonError

    before = datablock_counts()
    with pytest.raises(DepthAddonError, match="300x451 pixels but the photo is 451x300: it looks rotated"):
        import_sample(sample_photo, depth=metric_depth().T)  # would be stretched into nonsense
    assert datablock_counts() == before


def test_missing_weights_builds_nothing(sample_photo):
    from depth_addon import api
    from depth_addon.errors import WeightsUnavailableError

    before = datablock_counts()
    with pytest.raises(WeightsUnavailableError):
        api.image_to_object(str(sample_photo))
    assert datablock_counts() == before


def test_sample_relative_depth_picture(sample_photo):
    from depth_addon import api

    result = api.image_to_object(str(sample_photo), depth=str(sample_photo.with_name("chelsea_depth.png")),
                                 resolution=48)  # .png: relative, lighter = nearer
    distances = attribute(result.object.data, "depth", "value", 1)
    settings = BuildSettings()
    assert distances.min() >= settings.near * 0.999 and distances.max() <= settings.far * 1.001
    assert '"depth_kind": "relative"' in result.object["depth_addon_settings"]


def test_build_from_depth_with_a_blender_image():
    import bpy

    from depth_addon import api

    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    image = bpy.data.images.new("memory photo", 30, 20)
    rgba = np.ones((20, 30, 4), np.float32)
    rgba[..., :3] = rgb / 255
    image.pixels.foreach_set(rgba[::-1].ravel())
    depth = np.full((10, 15), 3.0, np.float32)  # half size: resampled to the photo's size
    settings = BuildSettings(output="points", stride=1, depth_kind="metric")
    result = api.build_from_depth(image, depth, settings, name="mem", fov_deg=40.0)
    assert result.image == image and result.object.name == "mem"
    assert point_count(result.object) == 20 * 30
    colors = attribute(result.object.data, "Col", "color_srgb", 4)
    np.testing.assert_array_equal(np.round(colors[:, :3] * 255).astype(np.uint8), rgb.reshape(-1, 3))
    assert result.camera.data.angle_x == pytest.approx(np.radians(40.0))


def test_cancel_before_building_creates_nothing(sample_photo):
    from depth_addon import api
    from depth_addon.errors import CancelledError

    before = datablock_counts()
    with pytest.raises(CancelledError):
        api.image_to_object(str(sample_photo), depth=metric_depth(), depth_kind="metric", cancel=lambda: True)
    assert datablock_counts() == before


def test_exif_rotated_photo_is_packed_upright(tmp_path):
    from PIL import Image

    from depth_addon import api
    from depth_addon.blender.datablocks import image_rgb
    from depth_addon.imageio import read_image

    rng = np.random.default_rng(3)
    stored = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)  # stored landscape, shown portrait
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=100)
    upright = read_image(path)
    assert upright.shape[:2] == (60, 40)
    result = api.image_to_object(str(path), depth=np.full((60, 40), 3.0, np.float32), depth_kind="metric",
                                 stride=1, tear=False)
    assert tuple(result.image.size) == (40, 60) and result.image.packed_file is not None
    np.testing.assert_array_equal(image_rgb(result.image), upright)
    assert len(result.object.data.vertices) == 60 * 40 + 2 * (60 + 40) - 4  # the grid and the fill's rim


@pytest.mark.parametrize(("height", "width", "output"), [(3, 2, "mesh"), (2, 3, "mesh"), (1, 5, "points")])
def test_tiny_photo_keeps_its_aspect_through_the_camera(height, width, output):
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    from depth_addon import api

    image = bpy.data.images.new("tiny", width, height)
    depth = np.full((height, width), 3.0, np.float32)
    result = api.build_from_depth(image, depth, BuildSettings(output=output, stride=1, depth_kind="metric", fill=False))
    render = bpy.context.scene.render
    assert render.resolution_x * height == render.resolution_y * width  # Blender's 4-pixel minimum kept the aspect
    data = result.object.data
    positions = attribute(data, "position", "vector", 3)
    ndc = np.array([world_to_camera_view(bpy.context.scene, result.camera, Vector(p))[:2] for p in positions])
    pixels = np.c_[ndc[:, 0] * width - 0.5, (1 - ndc[:, 1]) * height - 0.5]
    np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-3)  # every vertex on its pixel centre
    assert {tuple(p) for p in np.round(pixels).astype(int).tolist()} == {(x, y) for x in range(width)
                                                                         for y in range(height)}


def test_no_geometry_builds_nothing_and_remesh_keeps_the_object(sample_photo):
    from depth_addon import api
    from depth_addon.errors import DepthAddonError

    before = datablock_counts()
    for output in ("mesh", "points"):
        with pytest.raises(DepthAddonError, match="no usable values"):
            import_sample(sample_photo, depth=np.full((PHOTO_H, PHOTO_W), np.nan, np.float32), output=output)
        assert datablock_counts() == before
    result = import_sample(sample_photo, resolution=32)
    counts = len(result.object.data.vertices), len(result.object.data.polygons)
    with pytest.raises(DepthAddonError, match="stride 1000"):
        api.remesh(result.object, stride=1000)
    assert (len(result.object.data.vertices), len(result.object.data.polygons)) == counts
    assert '"resolution": 32' in result.object["depth_addon_settings"]


def test_select_only_skips_removed_objects_in_a_stale_view_layer():
    import bpy

    from depth_addon.blender.build import select_only

    view_layer = bpy.context.view_layer
    objects = [bpy.data.objects.new(f"o{i}", None) for i in range(3)]
    for obj in objects:
        bpy.context.collection.objects.link(obj)
    view_layer.update()
    for obj in objects:
        obj.select_set(True)
    bpy.data.objects.remove(objects.pop(1))  # popped: a removed object's Python wrapper must not be touched
    assert None in list(view_layer.objects.selected)  # the stale state this guards against
    select_only([objects[0]])
    assert objects[0].select_get() and not objects[1].select_get() and view_layer.objects.active == objects[0]


def test_second_import_keeps_the_scene_cameras_framing(sample_photo):
    import bpy

    from depth_addon import api

    first = import_sample(sample_photo, resolution=16)
    scene = bpy.context.scene
    tall = bpy.data.images.new("tall", 20, 60)
    second = api.build_from_depth(tall, np.full((60, 20), 3.0, np.float32),
                                  BuildSettings(resolution=16, depth_kind="metric"))
    assert scene.camera == first.camera and second.camera != first.camera
    assert (scene.render.resolution_x, scene.render.resolution_y) == (PHOTO_W, PHOTO_H)
    no_camera = BuildSettings(resolution=16, depth_kind="metric", add_camera=False)
    api.build_from_depth(tall, np.full((60, 20), 3.0, np.float32), no_camera)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (PHOTO_W, PHOTO_H)
    scene.camera = None
    api.build_from_depth(tall, np.full((60, 20), 3.0, np.float32), no_camera)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (20, 60)  # no camera's framing to keep


@pytest.mark.parametrize("output", ["mesh", "points"])
def test_failure_late_in_the_build_leaves_nothing_behind(sample_photo, monkeypatch, output):
    """A helper that fails after making datablocks of its own (here: the camera's) leaves none behind."""
    from depth_addon.blender import datablocks

    def camera_then_fail(name, model):
        real_new_camera(name, model)  # a camera object and its data exist now, unknown to the caller
        raise RuntimeError("simulated failure after the camera was made")

    real_new_camera = datablocks.new_camera
    monkeypatch.setattr(datablocks, "new_camera", camera_then_fail)
    before = datablock_counts()
    with pytest.raises(RuntimeError, match="simulated failure"):
        import_sample(sample_photo, resolution=48, tear=False, output=output)
    assert datablock_counts() == before


# ---------------------------------------------------------------- points mesh + geometry nodes (Blender 4.2-4.4)

@pytest.fixture
def points_fallback():
    """Point output as on Blenders without point-cloud objects: a points mesh with the shared modifier
    (``import_sample`` builds it with ``point_cloud=False``)."""
    return {"point_cloud": False}


def evaluated_points(obj) -> dict:
    """What ``obj`` evaluates to (its modifier's output), as arrays: a point cloud and no mesh."""
    import bpy

    depsgraph = bpy.context.evaluated_depsgraph_get()

    def read(cloud) -> dict:  # owned by the depsgraph: read before it goes
        return {"count": len(cloud.points), "materials": [m.original for m in cloud.materials],
                "position": attribute(cloud, "position", "vector", 3),
                "radius": attribute(cloud, "radius", "value", 1)}

    if hasattr(obj, "evaluated_geometry"):  # Blender 4.5+
        geometry = obj.evaluated_get(depsgraph).evaluated_geometry()
        assert geometry.mesh is None or len(geometry.mesh.vertices) == 0
        assert geometry.pointcloud is not None
        return read(geometry.pointcloud)
    # Blender 4.2-4.4: the point cloud component is one of the object's evaluated instances.
    found = []
    for instance in depsgraph.object_instances:
        evaluated = instance.object
        if evaluated.original != obj:
            continue
        if evaluated.type == "MESH":
            assert len(evaluated.data.vertices) == 0
        elif evaluated.type == "POINTCLOUD":
            found.append(read(evaluated.data))
    assert len(found) == 1, found
    return found[0]


def test_points_fallback_matches_the_point_cloud_path(sample_photo, points_fallback):
    import bpy

    require_point_clouds()  # the fallback is compared with the real point cloud

    from depth_addon import api
    from depth_addon.blender.build import is_point_object
    from depth_addon.imageio import read_image

    cloud = import_sample(sample_photo, output="points", stride=3, point_size=0.02, name="cloud").object.data
    result = import_sample(sample_photo, output="points", stride=3, point_size=0.02, **points_fallback)
    obj, mesh = result.object, result.object.data
    assert obj.type == "MESH" and is_point_object(obj) and isinstance(cloud, bpy.types.PointCloud)
    ys, xs = np.arange(0, PHOTO_H, 3), np.arange(0, PHOTO_W, 3)
    assert (len(mesh.vertices), len(mesh.edges), len(mesh.polygons)) == (len(ys) * len(xs), 0, 0)
    colors = attribute(mesh, "Col", "color_srgb", 4)
    expected = read_image(sample_photo)[np.ix_(ys, xs)].reshape(-1, 3)
    np.testing.assert_array_equal(np.round(colors[:, :3] * 255).astype(np.uint8), expected)
    for name, prop, width in (("position", "vector", 3), ("Col", "color", 4), ("radius", "value", 1),
                              ("depth", "value", 1)):
        assert mesh.attributes[name].data_type == cloud.attributes[name].data_type
        np.testing.assert_array_equal(attribute(mesh, name, prop, width), attribute(cloud, name, prop, width))
    radius = attribute(mesh, "radius", "value", 1)
    np.testing.assert_allclose(radius / attribute(mesh, "depth", "value", 1),
                               0.02 / np.median(metric_depth()[::3, ::3]), rtol=1e-3)
    # the shared modifier turns it into the same points, with the point material
    (modifier,) = obj.modifiers
    assert modifier.type == "NODES" and modifier.node_group.name == "Depth Addon Points"
    points = evaluated_points(obj)
    assert points["count"] == len(mesh.vertices) and points["materials"] == [obj.active_material]
    np.testing.assert_array_equal(points["position"], attribute(mesh, "position", "vector", 3))
    np.testing.assert_array_equal(points["radius"], radius)
    assert obj.active_material.node_tree.nodes["Attribute"].attribute_name == "Col"
    api.set_point_size(obj, 0.04)
    np.testing.assert_allclose(attribute(mesh, "radius", "value", 1), 2 * radius, rtol=1e-6)
    np.testing.assert_allclose(evaluated_points(obj)["radius"], 2 * radius, rtol=1e-6)
    assert '"point_size": 0.04' in obj["depth_addon_settings"]


@pytest.mark.parametrize("use_point_cloud", [None, False], ids=["pointcloud", "points_mesh"])
def test_points_render_the_photo_through_the_camera(tmp_path, sample_photo, use_point_cloud):
    """A tiny Cycles render through the created camera shows the photo's pixels (emission, Standard view)."""
    if use_point_cloud is None:
        require_point_clouds()  # else it is the points_mesh case again
    import bpy
    from PIL import Image

    from depth_addon import api

    height, width = 43, 64
    crop = np.asarray(Image.open(sample_photo).convert("RGB"))[100:100 + height, 150:150 + width]
    Image.fromarray(crop).save(tmp_path / "crop.png")
    # a pixel is 4 * tan(25 deg) / 32 = 0.058 units wide at the median distance: radius 0.045
    # covers every pixel centre with its own point (half diagonal 0.041) and no neighbour's (0.058)
    result = api.image_to_object(str(tmp_path / "crop.png"), depth=metric_depth(height, width), depth_kind="metric",
                                 output="points", stride=1, point_size=0.045, fov_deg=50.0, shader="shadeless",
                                 point_cloud=use_point_cloud)
    assert result.object.type == ("MESH" if use_point_cloud is False else "POINTCLOUD")
    scene = bpy.context.scene
    assert scene.camera == result.camera and (scene.render.resolution_x, scene.render.resolution_y) == (width, height)
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 4
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.cycles.filter_width = 0.01  # each pixel sees what its centre sees
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.color_depth = "8"
    scene.render.filepath = str(tmp_path / "render.png")
    bpy.ops.render.render(write_still=True)
    rendered = np.asarray(Image.open(tmp_path / "render.png").convert("RGB")).astype(int)
    error = np.abs(rendered - crop.astype(int)).max(axis=2)
    assert np.percentile(error, 99) <= 3, np.percentile(error, [50, 90, 99, 100])


def test_points_fallback_remesh_keeps_a_points_mesh(sample_photo, points_fallback):
    import bpy

    from depth_addon import api
    from depth_addon.errors import DepthAddonError

    result = import_sample(sample_photo, output="points", stride=10, **points_fallback)
    obj = result.object
    before = len(obj.data.vertices)
    duplicate = obj.copy()  # a linked duplicate (Alt+D) shares the mesh and has its own modifier
    bpy.context.collection.objects.link(duplicate)
    api.remesh(obj, stride=5)
    assert obj.type == "MESH" and len(obj.data.vertices) > 3 * before and len(obj.data.edges) == 0
    assert duplicate.data == obj.data and evaluated_points(duplicate)["count"] == len(obj.data.vertices)
    assert evaluated_points(obj)["count"] == len(obj.data.vertices)
    assert [m.name for m in obj.modifiers] == ["Depth Addon Points"] and obj.active_material is not None
    obj.modifiers.clear()  # a lost modifier comes back with the next re-mesh
    api.remesh(obj, stride=10)
    assert evaluated_points(obj)["count"] == before == len(obj.data.vertices)
    with pytest.raises(DepthAddonError, match="is a point cloud; to get a mesh"):
        api.remesh(obj, output="mesh")
    second = import_sample(sample_photo, output="points", stride=20, name="second", **points_fallback).object
    assert second.modifiers[0].node_group == obj.modifiers[0].node_group  # one shared node group
    assert (len(bpy.data.node_groups), len(bpy.data.pointclouds)) == (1, 0)


def test_points_fallback_failure_keeps_an_existing_node_group(sample_photo, points_fallback):
    import bpy

    from depth_addon import api

    removed_collection = bpy.data.collections.new("removed")  # passes the door, fails when linking
    bpy.data.collections.remove(removed_collection)

    def fail():
        with pytest.raises(ReferenceError):
            api.image_to_object(str(sample_photo), depth=metric_depth(), depth_kind="metric", output="points",
                                collection=removed_collection, stride=10, **points_fallback)

    before = datablock_counts()
    fail()
    assert datablock_counts() == before  # the node group it made went too
    first = import_sample(sample_photo, output="points", stride=10, **points_fallback)
    group = first.object.modifiers[0].node_group
    before = datablock_counts()
    fail()
    assert datablock_counts() == before and group.name in bpy.data.node_groups  # made before: kept
    assert evaluated_points(first.object)["count"] == len(first.object.data.vertices)


def test_points_fallback_glb_export_writes_the_points(sample_photo, tmp_path, points_fallback):
    import bpy

    from depth_addon.blender.export import export_scene

    result = import_sample(sample_photo, output="points", stride=10, **points_fallback)
    n_points = len(result.object.data.vertices)
    export_scene(tmp_path / "points.glb", result)
    assert [m.name for m in result.object.modifiers] == ["Depth Addon Points"]  # the object is left as it was
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(tmp_path / "points.glb"))
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    assert len(meshes) == 1 and len(meshes[0].data.vertices) == n_points
