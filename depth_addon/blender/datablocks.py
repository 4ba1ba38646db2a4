"""Images, materials and the camera: small bpy helpers used by ``depth_addon.blender.build``."""

from __future__ import annotations

import math
from pathlib import Path

import bpy
import numpy as np
from mathutils import Euler, Matrix, Vector

from ..exr import encode_gray_exr
from ..geometry import CameraModel
from ..png import encode_rgb_png
from .mesh import COLOR_ATTRIBUTE

SENSOR_WIDTH_MM = 36.0
MIN_RENDER_SIZE = 4  # RenderSettings.resolution_x/y minimum
# Object space -> camera: the camera looks along +Y with +Z up (Blender's front view).
CAMERA_ROTATION = Euler((math.pi / 2, 0.0, 0.0))


# ---------------------------------------------------------------- images

def load_photo(path: Path, rgb: np.ndarray, orientation: int | None) -> bpy.types.Image:
    """The photo as an Image datablock that references ``path`` (nothing is copied).

    An Image already loaded from the same file is reused. When the file's stored pixels differ
    from ``rgb`` (its EXIF ``orientation`` rotates them, which Blender does not apply) the image
    is made from ``rgb`` instead and packed, so the texture matches the geometry; its
    ``filepath`` still names the file.
    """
    before = set(bpy.data.images)
    image = bpy.data.images.load(str(path), check_existing=True)
    is_new = image not in before
    height, width = rgb.shape[:2]
    if tuple(image.size) == (width, height) and orientation in (None, 1):
        return image
    if is_new:
        bpy.data.images.remove(image)
    oriented = image_from_pixels(path.name, rgb)
    oriented.filepath_raw = str(path)  # provenance; the packed pixels are what renders
    return oriented


def image_from_pixels(name: str, rgb: np.ndarray) -> bpy.types.Image:
    """A packed sRGB Image from (H, W, 3|4) uint8 pixels (top row first)."""
    height, width = rgb.shape[:2]
    image = bpy.data.images.new(name, width, height, alpha=rgb.shape[2] == 4)
    rgba = np.ones((height, width, 4), dtype=np.float32)
    rgba[..., : rgb.shape[2]] = rgb / np.float32(255)
    image.pixels.foreach_set(rgba[::-1].ravel())
    image.pack()
    return image


def packed_png_image(name: str, rgb: np.ndarray) -> bpy.types.Image:
    """An sRGB Image packed as PNG bytes from (H, W, 3) uint8 pixels (top row first).

    Encoded uncompressed (``depth_addon.png``: a fraction of the time a compressing encoder takes)
    and packed as a file, like ``store_depth``: no float pixel buffer is uploaded, Blender
    decodes it when it is first drawn, rendered or exported, and it is saved in the .blend and
    embedded (glTF) or written (OBJ) as a PNG.
    """
    data = encode_rgb_png(rgb)
    image = bpy.data.images.new(name, 1, 1, alpha=False)
    image.pack(data=data, data_len=len(data))
    image.source = "FILE"
    image.filepath_raw = f"//{bpy.path.clean_name(name)}.png"  # where "Unpack" would write it
    image.file_format = "PNG"
    return image


def image_rgb(image: bpy.types.Image) -> np.ndarray:
    """(H, W, 3) uint8 sRGB pixels of a Blender image, top row first."""
    width, height = image.size
    if width == 0 or height == 0:
        from ..errors import ImageReadError

        raise ImageReadError(f"image {image.name!r} has no pixels; reload or replace its file ({image.filepath})")
    rgba = np.empty(width * height * 4, dtype=np.float32)
    image.pixels.foreach_get(rgba)
    rgb = rgba.reshape(height, width, 4)[::-1, :, :3]
    if image.is_float:  # float buffers hold linear values
        rgb = np.where(rgb <= 0.0031308, rgb * 12.92, 1.055 * np.power(np.clip(rgb, 0, None), 1 / 2.4) - 0.055)
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def store_depth(name: str, depth: np.ndarray) -> bpy.types.Image:
    """Keep a (H, W) float32 depth map as a packed full-float Non-Color image (R = G = B = depth).

    The pixels are packed as an uncompressed float EXR (``exr.encode_gray_exr``), so they
    survive saving the .blend exactly and ``load_depth`` gives back the same values.
    """
    data = encode_gray_exr(depth)
    image = bpy.data.images.new(name, 1, 1, alpha=False, float_buffer=True, is_data=True)
    image.pack(data=data, data_len=len(data))
    image.source = "FILE"
    image.filepath_raw = f"//{bpy.path.clean_name(name)}.exr"  # where "Unpack" would write it
    image.file_format = "OPEN_EXR"
    image.colorspace_settings.is_data = True
    return image


def load_depth(image: bpy.types.Image) -> np.ndarray:
    """The (H, W) float32 depth map kept by ``store_depth``."""
    width, height = image.size
    rgba = np.empty(width * height * 4, dtype=np.float32)
    image.pixels.foreach_get(rgba)
    return np.ascontiguousarray(rgba.reshape(height, width, 4)[::-1, :, 0])


# ---------------------------------------------------------------- materials

def photo_material(name: str, image: bpy.types.Image, shader: str) -> bpy.types.Material:
    """Material showing ``image`` through the mesh's UV map with ``shader`` (see ``_shade``)."""
    material = _node_material(name)
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()
    output = nodes.new("ShaderNodeOutputMaterial")
    texture = nodes.new("ShaderNodeTexImage")
    texture.image = image
    texture.extension = "EXTEND"  # no wrap-around bleeding at the photo's borders
    texture.location = (-700, 0)
    output.location = (300, 0)
    _shade(nodes, links, texture.outputs["Color"], output, shader)
    return material


def point_material(name: str, shader: str) -> bpy.types.Material:
    """Material colouring each point by its ``Col`` attribute."""
    material = _node_material(name)
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()
    output = nodes.new("ShaderNodeOutputMaterial")
    attribute = nodes.new("ShaderNodeAttribute")
    attribute.attribute_type = "GEOMETRY"
    attribute.attribute_name = COLOR_ATTRIBUTE
    attribute.location = (-700, 0)
    output.location = (300, 0)
    _shade(nodes, links, attribute.outputs["Color"], output, shader)
    return material


def _node_material(name: str) -> bpy.types.Material:
    material = bpy.data.materials.new(name)
    if material.node_tree is None:  # Blender 4.x; from 5.0 materials always have their node tree
        material.use_nodes = True
    return material


def _shade(nodes, links, color_socket, output, shader: str) -> None:
    """The shaders of Import Images as Planes, in the node layouts exporters recognise.

    principled: Principled BSDF (roughness 1: the photo already holds its lighting).
    shadeless: Mix Shader by Light Path "Is Camera Ray": camera rays see an Emission of the
      colour (exactly the photo under the Standard view transform), other rays a Diffuse BSDF, so
      it lights nothing. This is the layout glTF-Blender-IO exports as ``KHR_materials_unlit``; an
      unconnected Principled BSDF also carries the colour, as OBJ's ``map_Kd``, whose exporter
      reads the first Principled BSDF of a material.
    emission: a Principled BSDF with black base colour emitting the colour (strength 1).
    """
    principled = nodes.new("ShaderNodeBsdfPrincipled")
    principled.inputs["Roughness"].default_value = 1.0
    principled.location = (-250, 300)
    if shader == "emission":
        principled.inputs["Base Color"].default_value = (0.0, 0.0, 0.0, 1.0)
        principled.inputs["Specular IOR Level"].default_value = 0.0
        principled.inputs["Emission Strength"].default_value = 1.0
        links.new(color_socket, principled.inputs["Emission Color"])
    else:
        links.new(color_socket, principled.inputs["Base Color"])
    if shader != "shadeless":
        links.new(principled.outputs["BSDF"], output.inputs["Surface"])
        return
    light_path = nodes.new("ShaderNodeLightPath")
    diffuse = nodes.new("ShaderNodeBsdfDiffuse")
    emission = nodes.new("ShaderNodeEmission")
    mix = nodes.new("ShaderNodeMixShader")
    for node, location in ((light_path, (-250, -100)), (diffuse, (-250, -450)), (emission, (-250, -600)),
                           (mix, (100, 0))):
        node.location = location
    links.new(color_socket, diffuse.inputs["Color"])
    links.new(color_socket, emission.inputs["Color"])
    links.new(light_path.outputs["Is Camera Ray"], mix.inputs["Fac"])
    links.new(diffuse.outputs["BSDF"], mix.inputs[1])
    links.new(emission.outputs["Emission"], mix.inputs[2])
    links.new(mix.outputs["Shader"], output.inputs["Surface"])


# ---------------------------------------------------------------- camera

def new_camera(name: str, model: CameraModel) -> bpy.types.Object:
    data = bpy.data.cameras.new(name)
    camera = bpy.data.objects.new(name, data)
    configure_camera(camera, model, Matrix.Identity(4))
    return camera


def configure_camera(camera: bpy.types.Object, model: CameraModel, object_matrix: Matrix) -> None:
    """Lens, clipping and placement so that the object (world matrix ``object_matrix``) lines up with the photo."""
    data = camera.data
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = SENSOR_WIDTH_MM
    data.shift_x = data.shift_y = 0.0
    if model.ortho_scale is None:
        data.type = "PERSP"
        data.lens = model.lens_mm(SENSOR_WIDTH_MM)
    else:
        data.type = "ORTHO"
        data.ortho_scale = model.ortho_scale
    data.clip_start = model.clip_start
    data.clip_end = model.clip_end
    camera.matrix_world = (object_matrix @ Matrix.Translation(Vector(model.location))
                           @ CAMERA_ROTATION.to_matrix().to_4x4())


def set_render_resolution(scene: bpy.types.Scene, width: int, height: int) -> None:
    """Render size with the photo's aspect: the photo's size, scaled up by a whole factor when a side
    is below Blender's minimum of 4 pixels (which would clamp one side alone and change the aspect)."""
    factor = max(1, math.ceil(MIN_RENDER_SIZE / min(width, height)))
    render = scene.render
    render.resolution_x, render.resolution_y = width * factor, height * factor
    render.resolution_percentage = 100
    render.pixel_aspect_x = render.pixel_aspect_y = 1.0
