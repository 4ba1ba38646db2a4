"""Write the scene to .blend / .glb / .gltf / .obj / .ply for the headless entry points."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..errors import DepthAddonError
from .build import is_point_object


def reset_scene_if_startup() -> None:
    """Start from an empty scene unless a .blend was opened (``blender -b file.blend --python ...``).

    The factory startup file, emptied; preferences (enabled add-ons and extensions) stay as they are.
    """
    if not bpy.data.filepath:
        bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)


def export_scene(path: Path, result) -> None:
    """Save or export the scene holding ``result`` (a DepthImportResult) to ``path`` by its suffix.

    .blend keeps everything (the photo referenced by its path, the depth image packed).
    .glb/.gltf carry the camera; .obj has no cameras; .ply holds the object alone.
    A point cloud is exported as loose vertices with their colours where the format allows.
    """
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".blend":
        bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True)
        return
    with _exportable(result) as obj:
        selection = [obj] + ([result.camera] if result.camera is not None else [])
        _select_only(selection)
        with bpy.context.temp_override(selected_objects=selection, active_object=obj):
            if suffix in (".glb", ".gltf"):
                bpy.ops.export_scene.gltf(
                    filepath=str(path), export_format="GLB" if suffix == ".glb" else "GLTF_SEPARATE",
                    use_selection=True, export_cameras=True, export_yup=True,
                    use_mesh_vertices=is_point_object(result.object),
                )
            elif suffix == ".obj":
                bpy.ops.wm.obj_export(filepath=str(path), export_selected_objects=True, export_materials=True,
                                      path_mode="COPY" if obj.type == "MESH" else "AUTO")
                if obj.type == "MESH":
                    _write_packed_textures(obj, path.parent)
            elif suffix == ".ply":
                bpy.ops.wm.ply_export(filepath=str(path), export_selected_objects=True, export_uv=True,
                                      export_colors="SRGB", ascii_format=False)
            else:
                raise DepthAddonError(f"cannot write {path.name}: use .blend, .glb, .gltf, .obj or .ply")


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

    def __init__(self, result):
        self.result = result
        self.temp = None

    def __enter__(self):
        obj = self.result.object
        if not is_point_object(obj):
            return obj
        mesh = bpy.data.meshes.new(obj.name)
        cloud = obj.data  # a PointCloud, or the points mesh
        n = len(cloud.attributes["position"].data)
        mesh.vertices.add(n)
        import numpy as np

        for name, prop, width, dtype in (("position", "vector", 3, "FLOAT_VECTOR"), ("Col", "color", 4, "FLOAT_COLOR")):
            values = np.empty(n * width, dtype=np.float32)
            if name not in cloud.attributes:
                continue
            cloud.attributes[name].data.foreach_get(prop, values)
            target = mesh.attributes.get(name) or mesh.attributes.new(name, dtype, "POINT")
            target.data.foreach_set(prop, values)
        if "Col" in mesh.attributes:
            mesh.color_attributes.active_color = mesh.attributes["Col"]
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


def _select_only(objects) -> None:
    view_layer = bpy.context.view_layer
    view_layer.update()  # objects linked just now must be synced into the view layer first
    for obj in view_layer.objects:
        obj.select_set(obj in objects)
