"""A scene built in Blender to measure the fill: objects in front of a floor and a wall.

Its photo is a Cycles render, its metric depth Blender's own ``scene.ray_cast`` through every
pixel centre (camera-axis distance), and its hidden background the same ray cast with the
objects hidden. ``render_alpha`` renders what the add-on built, with a transparent film, from
the created camera or a camera moved sideways. Used by tests/test_fill_render.py and
scripts/render_readme_picture.py-style measurements; needs the real bpy module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 160, 120
FOV_DEG = 55.0
CAMERA_HEIGHT = 1.2
WALL_Y = 9.0
FLOOR_NAME, WALL_NAME = "floor", "wall"


@dataclass
class SceneData:
    photo: Path                 # the Cycles render, (HEIGHT, WIDTH) PNG
    depth: np.ndarray           # (H, W) float32 camera-axis distance of the visible surface
    background: np.ndarray      # (H, W) float32 the same with the objects hidden (floor and wall alone)
    background_hit: np.ndarray  # (H, W) <U5 which plane the background ray hits: "floor" / "wall"


def _material(bpy, name, colour, checker=None):
    material = bpy.data.materials.new(name)
    if material.node_tree is None:
        material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = 0.8
    if checker is None:
        bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    else:
        texture = nodes.new("ShaderNodeTexChecker")
        texture.inputs["Scale"].default_value = checker
        texture.inputs["Color1"].default_value = (*colour, 1.0)
        texture.inputs["Color2"].default_value = tuple(0.5 * c for c in colour) + (1.0,)
        links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
    return material


def _add(bpy, mesh_op, name, material, **kwargs):
    mesh_op(**kwargs)
    obj = bpy.context.active_object
    obj.name = name
    obj.data.materials.append(material)
    return obj


def build_scene(bpy):
    """Floor (z = 0), a wall at y = WALL_Y, a box, a ball and a column; a camera at height
    CAMERA_HEIGHT on the -Y side... at the origin, looking along +Y. -> (camera, foreground objects)"""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    floor = _add(bpy, bpy.ops.mesh.primitive_plane_add, FLOOR_NAME, _material(bpy, "floor", (0.6, 0.45, 0.3), 6.0),
                 size=40.0, location=(0.0, 10.0, 0.0))
    wall = _add(bpy, bpy.ops.mesh.primitive_plane_add, WALL_NAME, _material(bpy, "wall", (0.35, 0.5, 0.7), 4.0),
                size=40.0, location=(0.0, WALL_Y, 10.0), rotation=(math.pi / 2, 0.0, 0.0))
    objects = [
        _add(bpy, bpy.ops.mesh.primitive_cube_add, "box", _material(bpy, "box", (0.8, 0.2, 0.15)),
             size=1.0, location=(-1.3, 5.0, 0.5), rotation=(0.0, 0.0, 0.5)),
        _add(bpy, bpy.ops.mesh.primitive_uv_sphere_add, "ball", _material(bpy, "ball", (0.2, 0.7, 0.25)),
             radius=0.55, location=(0.6, 5.5, 0.55), segments=48, ring_count=24),
        _add(bpy, bpy.ops.mesh.primitive_cylinder_add, "column", _material(bpy, "column", (0.9, 0.85, 0.3)),
             radius=0.3, depth=2.2, location=(2.1, 6.5, 1.1), vertices=48),
    ]
    for obj in objects:
        bpy.ops.object.select_all(action="DESELECT")
        obj.select_set(True)
        bpy.context.view_layer.objects.active = obj
        bpy.ops.object.shade_smooth()
    del floor, wall
    camera_data = bpy.data.cameras.new("photo camera")
    camera_data.sensor_fit = "HORIZONTAL"
    camera_data.sensor_width = 36.0
    camera_data.lens = 18.0 / math.tan(math.radians(FOV_DEG) / 2)
    camera = bpy.data.objects.new("photo camera", camera_data)
    camera.location = (0.0, 0.0, CAMERA_HEIGHT)
    camera.rotation_euler = (math.pi / 2, 0.0, 0.0)
    bpy.context.scene.collection.objects.link(camera)
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    sun.data.energy = 3.0
    sun.rotation_euler = (math.radians(50), math.radians(-25), math.radians(20))
    bpy.context.scene.collection.objects.link(sun)
    world = bpy.data.worlds.new("sky")
    world.color = (0.5, 0.5, 0.5)
    bpy.context.scene.world = world
    return camera, objects


def ray_cast_depth(bpy, camera) -> tuple[np.ndarray, np.ndarray]:
    """Camera-axis distance through every pixel centre (NaN = nothing hit) and the hit object's name."""
    from mathutils import Vector

    depsgraph = bpy.context.evaluated_depsgraph_get()
    focal = (WIDTH / 2) / math.tan(math.radians(FOV_DEG) / 2)
    origin = camera.matrix_world.translation
    rotation = camera.matrix_world.to_3x3()
    depth = np.full((HEIGHT, WIDTH), np.nan, np.float32)
    names = np.full((HEIGHT, WIDTH), "", dtype="<U8")
    scene = bpy.context.scene
    for y in range(HEIGHT):
        for x in range(WIDTH):
            local = Vector(((x + 0.5 - WIDTH / 2) / focal, (HEIGHT / 2 - (y + 0.5)) / focal, -1.0))
            hit, location, _, _, obj, _ = scene.ray_cast(depsgraph, origin, (rotation @ local).normalized())
            if hit:
                depth[y, x] = (rotation.inverted() @ (location - origin)).z * -1.0
                names[y, x] = obj.name
    return depth, names


def cycles(scene, samples=8, transparent=False):
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.render.film_transparent = transparent
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA" if transparent else "RGB"
    scene.render.image_settings.color_depth = "8"
    scene.render.resolution_percentage = 100


def make_scene(bpy, folder: Path) -> SceneData:
    """Build the scene, render its photo, ray-cast its depth and hidden background."""
    camera, objects = build_scene(bpy)
    scene = bpy.context.scene
    scene.camera = camera
    scene.render.resolution_x, scene.render.resolution_y = WIDTH, HEIGHT
    cycles(scene, samples=16)
    photo = folder / "scene.png"
    scene.render.filepath = str(photo)
    bpy.ops.render.render(write_still=True)
    depth, _ = ray_cast_depth(bpy, camera)
    for obj in objects:
        obj.hide_set(True)
        obj.hide_viewport = True
    background, names = ray_cast_depth(bpy, camera)
    return SceneData(photo, depth, background, names)


def render_alpha(bpy, camera, path: Path, samples=4) -> np.ndarray:
    """(H, W, 4) uint8 Cycles render through ``camera`` with a transparent film."""
    from PIL import Image

    scene = bpy.context.scene
    cycles(scene, samples=samples, transparent=True)
    scene.camera = camera
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return np.asarray(Image.open(path).convert("RGBA"))


def side_camera(bpy, camera, step: float):
    """A copy of ``camera`` moved ``step`` along its own x axis and turned back to look at the
    object's origin (the median-depth point on the original optical axis)."""
    from mathutils import Vector

    side = camera.copy()
    side.data = camera.data.copy()
    bpy.context.scene.collection.objects.link(side)
    right = camera.matrix_world.to_3x3() @ Vector((1.0, 0.0, 0.0))
    side.location = camera.matrix_world.translation + right * step
    target = Vector((0.0, 0.0, 0.0))
    side.rotation_euler = (target - side.location).to_track_quat("-Z", "Y").to_euler()
    return side
