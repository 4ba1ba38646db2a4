"""Write the scene to .blend / .glb / .gltf / .obj / .ply for the headless entry points."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from ..errors import DepthAddonError
from .build import is_point_object, select_only
from .mesh import COLOR_ATTRIBUTE


def reset_scene_if_startup() -> None:
    """Start from an empty scene unless a .blend was opened (``blender -b file.blend --python ...``).

    The factory startup file, emptied and set up to show the photo as it is (``show_photo_as_is``);
    preferences (enabled add-ons and extensions) stay as they are. An opened .blend keeps its own
    look: it is the user's scene.
    """
    if not bpy.data.filepath:
        bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
        show_photo_as_is(bpy.context.scene)


def show_photo_as_is(scene: bpy.types.Scene) -> None:
    """A scene whose render through the import's camera is the photo (median error ~1/255).

    * View transform Standard (plain sRGB): Blender's default, AgX, tone-maps even an unlit
      white to grey (25/255 off the photo); Standard gives the texture's colours back.
    * A uniform white world of strength 1: a matte (Principled, roughness 1) surface under it
      reflects its albedo, so the lit shaders show the photo too, with no light to add (a little
      brighter from the specular reflection: median 12/255 in Cycles).
    * Transparent film: where the mesh tears there is nothing, not the white world.
    """
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    world = bpy.data.worlds.new("Depth Addon World")
    if world.node_tree is None:  # Blender 4.x; from 5.0 worlds always have their node tree
        world.use_nodes = True
    background = next(node for node in world.node_tree.nodes if node.type == "BACKGROUND")
    background.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    background.inputs["Strength"].default_value = 1.0
    world.color = (1.0, 1.0, 1.0)
    scene.world = world
    scene.render.film_transparent = True


def export_scene(path: Path, result, pack_images: bool = True, triangulate: bool = True) -> None:
    """Save or export the scene holding ``result`` (a DepthImportResult) to ``path`` by its suffix.

    .blend keeps everything: with ``pack_images`` every image file it uses (the photo, any other
    texture) is packed into it, so a copy renders the same anywhere; else they are referenced
    by path. The depth image is always packed. .glb/.gltf carry the camera; .obj (triangulated
    unless ``triangulate`` is False, with its .mtl and the texture copied beside) has no cameras;
    .ply holds the object alone (UVs and a ``comment TextureFile`` naming the texture copied
    beside it, or point colours). Axes: glTF +Y up, -Z forward (its specification); OBJ +Y up,
    -Z forward (what OBJ readers assume); PLY as in Blender, +Z up, +Y forward (PLY has no
    convention; scanners and Blender use Z up). One unit is one metre in all of them.
    """
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".blend":
        packed = _pack_image_files() if pack_images else []
        try:
            bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True)
        finally:  # packed for the .blend alone: later exports copy the files as they are
            for image in packed:
                image.unpack(method="USE_ORIGINAL")  # the file it was packed from is still there
        return
    with _exportable(result, round_ply_colors=suffix == ".ply") as obj:
        selection = ([result.camera] if result.camera is not None else []) + [obj]  # obj last: the active one
        bpy.context.view_layer.update()  # a temporary points mesh linked just now must be in the view layer
        select_only(selection)
        with bpy.context.temp_override(selected_objects=selection, active_object=obj):
            if suffix in (".glb", ".gltf"):
                # Shared accessors: one vertex list for the photo and fill primitives, de-duplicated
                # once over the face corners instead of once per primitive over triangle corners;
                # no normals where every material is unlit (viewers ignore them there). Measured
                # on a 2 M vertex mesh: the exporter's peak memory 2.4 -> 1.3 GB, its time halved.
                bpy.ops.export_scene.gltf(
                    filepath=str(path), export_format="GLB" if suffix == ".glb" else "GLTF_SEPARATE",
                    use_selection=True, export_cameras=True, export_yup=True,
                    use_mesh_vertices=is_point_object(result.object), export_shared_accessors=True,
                    export_normals=not _all_unlit(obj),
                )
            elif suffix == ".obj":
                with _principled_surface(obj):
                    bpy.ops.wm.obj_export(filepath=str(path), export_selected_objects=True, export_materials=True,
                                          path_mode="COPY" if obj.type == "MESH" else "AUTO",
                                          export_triangulated_mesh=triangulate)
                if obj.type == "MESH":
                    _write_packed_textures(obj, path.parent)
            elif suffix == ".ply":
                bpy.ops.wm.ply_export(filepath=str(path), export_selected_objects=True, export_uv=True,
                                      export_colors="SRGB", ascii_format=False)
                if not is_point_object(result.object):
                    _name_ply_texture(path, result.image)
            else:
                raise DepthAddonError(f"cannot write {path.name}: use .blend, .glb, .gltf, .obj or .ply")


def _all_unlit(obj) -> bool:
    return bool(obj.material_slots) and all(_is_unlit(slot.material) for slot in obj.material_slots)


def _is_unlit(material) -> bool:
    """``material`` has the shadeless layout (``datablocks._shade``: Mix Shader by Light Path), which the
    glTF exporter writes as ``KHR_materials_unlit``."""
    if material is None or material.node_tree is None:
        return False
    output = material.node_tree.get_output_node("ALL")
    surface = output.inputs["Surface"].links if output is not None else ()
    mix = surface[0].from_node if surface else None
    fac = mix.inputs["Fac"].links if mix is not None and mix.type == "MIX_SHADER" else ()
    return bool(fac) and fac[0].from_node.type == "LIGHT_PATH"


def _write_packed_textures(obj, folder: Path) -> None:
    """Write the packed images of ``obj``'s materials that have no file (the fill's extended photo) next
    to an .obj: its .mtl names them by their file name, but the OBJ exporter copies files only."""
    for material in obj.data.materials:
        if material is None or material.node_tree is None:
            continue
        for node in material.node_tree.nodes:
            image = getattr(node, "image", None) if node.type == "TEX_IMAGE" else None
            if image is None or image.packed_file is None:
                continue
            source = Path(bpy.path.abspath(image.filepath, library=image.library))
            if not source.is_file():
                (folder / source.name).write_bytes(image.packed_file.data)


class _exportable:
    """The result's object, or for point output a temporary vertices-only mesh copy of it (position and
    colour): exporters cannot write PointCloud objects, and would apply the points modifier of a
    points mesh (Blender 4.2-4.4) into nothing."""

    def __init__(self, result, round_ply_colors: bool = False):
        self.result = result
        self.round_ply_colors = round_ply_colors
        self.temp = None

    def __enter__(self):
        obj = self.result.object
        if not is_point_object(obj):
            return obj
        mesh = bpy.data.meshes.new(obj.name)
        cloud = obj.data  # a PointCloud, or the points mesh
        n = len(cloud.attributes["position"].data)
        mesh.vertices.add(n)
        for name, prop, width, dtype in (("position", "vector", 3, "FLOAT_VECTOR"), (COLOR_ATTRIBUTE, "color", 4, "FLOAT_COLOR")):
            values = np.empty(n * width, dtype=np.float32)
            if name not in cloud.attributes:
                continue
            cloud.attributes[name].data.foreach_get(prop, values)
            if name == COLOR_ATTRIBUTE and self.round_ply_colors:
                values = _truncation_proof(values.reshape(-1, 4)).ravel()
            target = mesh.attributes.get(name) or mesh.attributes.new(name, dtype, "POINT")
            target.data.foreach_set(prop, values)
        if COLOR_ATTRIBUTE in mesh.attributes:
            mesh.color_attributes.active_color = mesh.attributes[COLOR_ATTRIBUTE]
        self.temp = bpy.data.objects.new(obj.name, mesh)
        self.temp.matrix_world = obj.matrix_world
        bpy.context.scene.collection.objects.link(self.temp)
        return self.temp

    def __exit__(self, *exc):
        if self.temp is not None:
            mesh = self.temp.data
            bpy.data.objects.remove(self.temp)
            bpy.data.meshes.remove(mesh)
        return False


class _principled_surface:
    """For the OBJ exporter, which writes ``map_Kd`` only from a Principled BSDF feeding the output:
    a shadeless material's (unconnected) Principled BSDF is linked to its output while exporting."""

    def __init__(self, obj):
        self.swapped = []  # (links, output socket, the socket that fed it)
        for material in getattr(obj.data, "materials", ()):
            tree = material.node_tree if material is not None else None
            output = next((n for n in tree.nodes if n.type == "OUTPUT_MATERIAL" and n.is_active_output), None) \
                if tree is not None else None
            principled = next((n for n in tree.nodes if n.type == "BSDF_PRINCIPLED"), None) if tree else None
            surface = output.inputs["Surface"] if output is not None else None
            if principled is None or surface is None or not surface.links:
                continue
            if surface.links[0].from_node != principled:
                self.swapped.append((tree.links, surface, surface.links[0].from_socket, principled.outputs["BSDF"]))

    def __enter__(self):
        for links, surface, _, bsdf in self.swapped:
            links.new(bsdf, surface)
        return self

    def __exit__(self, *exc):
        for links, surface, original, _ in self.swapped:
            links.new(original, surface)
        return False


def _pack_image_files() -> list:
    """Pack every image that comes from a file, so the .blend needs nothing beside it; those packed now."""
    packed = []
    for image in bpy.data.images:
        if image.source == "FILE" and image.packed_file is None and image.filepath:
            image.pack()
            packed.append(image)
    return packed


def _name_ply_texture(path: Path, image) -> None:
    """Copy the texture beside a mesh PLY and name it in a ``comment TextureFile`` header line.

    Blender's PLY exporter writes UVs but no texture: this comment is the convention that
    trimesh, MeshLab and CloudCompare read. A packed or generated image is saved as PNG.
    """
    texture = _copy_texture(image, path.parent)
    if texture is None:
        return
    data = path.read_bytes()
    end = data.index(b"end_header")
    header, body = data[:end], data[end:]
    lines = header.split(b"\n")
    lines.insert(2, f"comment TextureFile {texture.name}".encode())  # after "ply" and "format ..."
    path.write_bytes(b"\n".join(lines) + body)


def _copy_texture(image, folder: Path) -> Path | None:
    """The photo as a file in ``folder``: its own file copied, or (packed / made from pixels) saved as PNG."""
    import shutil

    source = Path(bpy.path.abspath(image.filepath_raw)) if image.filepath_raw else None
    if source is not None and source.is_file() and image.packed_file is None:
        target = folder / source.name
        if target.resolve() != source.resolve():
            shutil.copyfile(source, target)
        return target
    target = folder / f"{bpy.path.clean_name(Path(image.name).stem)}.png"
    width, height = image.size
    pixels = np.empty(width * height * 4, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    copy = bpy.data.images.new(target.stem, width, height, alpha=False, float_buffer=False)
    try:  # a new image, so saving writes its file and leaves the (packed) original as it is
        copy.pixels.foreach_set(pixels)
        copy.filepath_raw = str(target)
        copy.file_format = "PNG"
        copy.save()
    finally:
        bpy.data.images.remove(copy)
    return target


def _truncation_proof(linear_rgba: np.ndarray) -> np.ndarray:
    """Linear colours that Blender's PLY exporter turns into the *rounded* 8-bit sRGB values.

    The exporter converts to sRGB and truncates (``uchar(v * 255)``): -0.5/255 on average, and
    an 8-bit photo colour comes out one step darker about half the time. Moving each value to
    the middle of its rounded step makes truncation give the rounded value exactly.

    linear_rgba: (N, 4) float32 -> (N, 4) float32
    """
    out = linear_rgba.copy()
    rgb = np.clip(out[:, :3].astype(np.float64), 0.0, 1.0)
    srgb = np.where(rgb <= 0.0031308, rgb * 12.92, 1.055 * rgb ** (1 / 2.4) - 0.055)
    middle = np.minimum((np.round(srgb * 255.0) + 0.5) / 255.0, 1.0)
    out[:, :3] = np.where(middle <= 0.04045, middle / 12.92, ((middle + 0.055) / 1.055) ** 2.4)
    return out
