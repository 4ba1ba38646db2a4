"""The fill in real Blender: Cycles renders through the created camera and a camera moved sideways,
a scene built in Blender as ground truth, re-mesh and exports (marker ``blender``).

Renders are small (160 x 120, the sample at 451 x 300) with 4 samples: a pixel "sees through"
when its alpha is below one half.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

pytestmark = pytest.mark.blender

SEE_THROUGH_ALPHA = 128  # of 255
SIDE_STEP = 0.08         # of the median distance


@pytest.fixture(scope="module")
def scene_data(tmp_path_factory):
    import bpy

    import fill_scene

    return fill_scene.make_scene(bpy, tmp_path_factory.mktemp("fill_scene"))


def build(photo, depth, **settings):
    import bpy

    from depth_addon import api

    bpy.ops.wm.read_factory_settings(use_empty=True)
    settings.setdefault("shader", "shadeless")
    return api.image_to_object(str(photo), depth=depth, **settings)


def build_scene_mesh(scene_data, **settings):
    import fill_scene

    return build(scene_data.photo, scene_data.depth, depth_kind="metric", fov_deg=fill_scene.FOV_DEG, **settings)


def see_through(bpy, camera, path):
    import fill_scene

    return fill_scene.render_alpha(bpy, camera, path)[..., 3] < SEE_THROUGH_ALPHA


def test_sample_photo_and_depth_show_nothing_of_the_world_through_the_camera(sample_photo, tmp_path):
    import bpy

    from conftest import SAMPLES

    result = build(sample_photo, SAMPLES / "chelsea_depth.png")
    filled = see_through(bpy, result.camera, tmp_path / "filled.png")
    result = build(sample_photo, SAMPLES / "chelsea_depth.png", fill=False)
    torn = see_through(bpy, result.camera, tmp_path / "torn.png")
    print(f"sample, default settings: see-through {filled.mean():.2%} with the fill, {torn.mean():.2%} without")
    assert filled.sum() == 0
    assert torn.mean() > 0.03  # the outline around every tear and the half-pixel frame the fill closes


def test_scene_through_the_camera_and_from_a_camera_stepped_sideways(scene_data, tmp_path):
    import bpy

    import fill_scene

    reference = build_scene_mesh(scene_data, tear=False, fill=False)  # a rubber sheet: where the frame is
    pivot = -reference.camera.location[1]
    frame = ~see_through(bpy, fill_scene.side_camera(bpy, reference.camera, SIDE_STEP * pivot), tmp_path / "ref.png")
    figures = {}
    for name, settings in (("fill", {}), ("no fill", {"fill": False})):
        result = build_scene_mesh(scene_data, **settings)
        front = see_through(bpy, result.camera, tmp_path / f"{name} front.png")
        side = see_through(bpy, fill_scene.side_camera(bpy, result.camera, SIDE_STEP * pivot),
                           tmp_path / f"{name} side.png")
        figures[name] = front.mean(), (side & frame).sum() / frame.sum()
    print("scene: see-through through the camera, holes inside the photo's frame from the side: "
          + ", ".join(f"{name} {a:.2%} / {b:.2%}" for name, (a, b) in figures.items()))
    assert figures["fill"][0] == 0
    assert figures["fill"][1] <= 0.005
    assert figures["no fill"][0] > 0.005 and figures["no fill"][1] > 0.02  # what the fill closes


def test_scene_layer_lies_on_the_hidden_planes(scene_data):
    """Where the hidden surface is one plane (the wall, or the floor, over the whole plane-fit window),
    the layer's own vertices lie within 2% of the depth range of it; the Blender object's vertices."""
    import cv2

    import fill_scene
    from depth_addon.geometry.fill import fill_cells
    from depth_addon.settings import BuildSettings

    result = build_scene_mesh(scene_data)
    mesh = result.object.data
    count = len(mesh.vertices)
    positions = np.empty(count * 3, np.float32)
    mesh.attributes["position"].data.foreach_get("vector", positions)
    positions = positions.reshape(-1, 3)
    depth = np.empty(count, np.float32)
    mesh.attributes["depth"].data.foreach_get("value", depth)
    # each vertex's pixel, back through the created camera (it looks along +Y at the object at the origin)
    height, width = scene_data.depth.shape
    focal = (width / 2) / np.tan(np.radians(fill_scene.FOV_DEG) / 2)
    relative = positions.astype(np.float64) - np.asarray(result.camera.location)
    px = np.clip(np.floor(relative[:, 0] / relative[:, 1] * focal + width / 2).astype(int), 0, width - 1)
    py = np.clip(np.floor(height / 2 - relative[:, 2] / relative[:, 1] * focal).astype(int), 0, height - 1)
    own = depth > scene_data.depth[py, px] * (1 + 1e-4)  # the layer's own vertices: behind what the photo shows
    assert own.sum() > 200
    px, py, depth = px[own], py[own], depth[own]
    hidden = scene_data.background[py, px]
    visible = scene_data.depth[py, px]
    # the plane-fit window (the fill width plus two cells) holds one plane only
    radius = fill_cells(BuildSettings().fill_width, height, width, np.arange(width), np.arange(height)) + 2
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    floor = (scene_data.background_hit == "floor").astype(np.uint8)
    crease = cv2.dilate(floor, kernel).astype(bool) & cv2.dilate(1 - floor, kernel).astype(bool)
    on_plane = ~crease[py, px] & (visible < hidden * 0.99)  # a foreground object hides the plane here
    assert on_plane.sum() > 200
    depth_range = float(np.ptp(scene_data.depth))
    error = np.abs(depth - hidden)[on_plane] / depth_range
    print(f"scene: {on_plane.sum()} layer vertices over a hidden plane, distance to it "
          f"median {np.median(error):.3%}, max {error.max():.3%} of the depth range")
    assert error.max() <= 0.02


def test_remesh_with_fill_replaces_the_layer_and_its_texture(sample_photo):
    import bpy

    from conftest import SAMPLES
    from depth_addon import api
    from depth_addon.blender.build import PROP_FILL_IMAGE

    result = build(sample_photo, SAMPLES / "chelsea_depth.png", resolution=128)
    obj = result.object
    assert [m.name for m in obj.data.materials] == ["chelsea", "chelsea filled"]
    first = obj[PROP_FILL_IMAGE]
    assert first.packed_file is not None and tuple(first.size) == (451, 300)
    first_name = first.name
    layer_faces = int((attribute_int(obj.data, "material_index") == 1).sum())
    api.remesh(obj, fill_width=0.1)
    second = obj[PROP_FILL_IMAGE]
    assert second.name != first_name and first_name not in bpy.data.images  # the old extended photo is gone
    assert obj.data.materials[1].node_tree.nodes["Image Texture"].image == second
    assert int((attribute_int(obj.data, "material_index") == 1).sum()) > layer_faces
    assert not obj.data.validate(verbose=True)
    api.remesh(obj, fill=False)
    assert "material_index" not in obj.data.attributes or attribute_int(obj.data, "material_index").max() == 0
    api.remesh(obj, fill=True)
    assert attribute_int(obj.data, "material_index").max() == 1 and not obj.data.validate(verbose=True)


def attribute_int(data, name):
    attr = data.attributes[name]
    values = np.empty(len(attr.data), np.int32)
    attr.data.foreach_get("value", values)
    return values


def test_exports_carry_the_extended_photo(sample_photo, tmp_path):
    import bpy

    from conftest import SAMPLES
    from depth_addon.blender.export import export_scene

    result = build(sample_photo, SAMPLES / "chelsea_depth.png", resolution=96, shader="principled")
    for name in ("scene.blend", "scene.glb", "scene.obj"):
        export_scene(tmp_path / name, result)
    data = (tmp_path / "scene.glb").read_bytes()
    length = struct.unpack("<I", data[12:16])[0]
    gltf = json.loads(data[20:20 + length])
    assert len(gltf["images"]) == 2 and all("bufferView" in image for image in gltf["images"])  # embedded
    mtl = (tmp_path / "scene.mtl").read_text()
    assert "map_Kd chelsea_filled.png" in mtl and (tmp_path / "chelsea_filled.png").stat().st_size > 1000
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "scene.blend"))
    image = bpy.data.objects["chelsea"]["depth_addon_fill_image"]
    assert image.packed_file is not None and tuple(image.size) == (451, 300)


def test_point_cloud_gets_filled_points_behind_a_setting(sample_photo):
    from conftest import SAMPLES

    plain = build(sample_photo, SAMPLES / "chelsea_depth.png", output="points", stride=4)
    count = len(plain.object.data.attributes["position"].data)
    filled = build(sample_photo, SAMPLES / "chelsea_depth.png", output="points", stride=4, fill_points=True)
    assert len(filled.object.data.attributes["position"].data) > count


def test_fill_settings_are_in_the_operator_redo_panel_and_the_sidebar():
    import bpy

    import depth_addon

    depth_addon.register()
    try:
        operator = bpy.ops.depth_addon.image_to_object.get_rna_type().properties
        sidebar = bpy.context.scene.depth_addon
        for name in ("fill", "fill_width", "fill_points"):
            assert name in operator and name in sidebar.bl_rna.properties
        assert sidebar.fill and sidebar.fill_width == pytest.approx(0.05)
        from depth_addon.ui.properties import settings_from_props

        sidebar.fill, sidebar.fill_width = False, 0.1
        settings = settings_from_props(sidebar)
        assert (settings.fill, settings.fill_width) == (False, 0.1)
    finally:
        depth_addon.unregister()
