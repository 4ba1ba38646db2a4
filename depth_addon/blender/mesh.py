"""numpy arrays -> Mesh / PointCloud datablocks through the data API (``foreach_set``, no per-vertex loops)."""

from __future__ import annotations

import bpy
import numpy as np

from ..errors import DepthAddonError
from ..geometry import MeshArrays, PointArrays

UV_MAP_NAME = "UVMap"
COLOR_ATTRIBUTE = "Col"
DEPTH_ATTRIBUTE = "depth"

# 8-bit sRGB -> linear, the standard sRGB transfer function (Blender's default colour space).
_levels = np.arange(256) / 255.0
SRGB_TO_LINEAR = np.where(_levels <= 0.04045, _levels / 12.92, ((_levels + 0.055) / 1.055) ** 2.4).astype(np.float32)


def new_mesh(name: str, arrays: MeshArrays, smooth: bool = True) -> bpy.types.Mesh:
    """A new mesh datablock holding ``arrays`` (positions, quads, edges, UVs, ``depth`` attribute)."""
    mesh = bpy.data.meshes.new(name)
    try:
        fill_mesh(mesh, arrays, smooth)
    except BaseException:
        bpy.data.meshes.remove(mesh)
        raise
    return mesh


def fill_mesh(mesh: bpy.types.Mesh, arrays: MeshArrays, smooth: bool = True) -> None:
    """Replace ``mesh``'s geometry with ``arrays``; materials stay."""
    mesh.clear_geometry()
    n_faces = len(arrays.faces)
    mesh.vertices.add(len(arrays.positions))
    mesh.edges.add(len(arrays.edges))
    mesh.loops.add(n_faces * 4)
    mesh.polygons.add(n_faces)
    attributes = mesh.attributes
    attributes["position"].data.foreach_set("vector", _flat(arrays.positions, np.float32))
    attributes[".edge_verts"].data.foreach_set("value", _flat(arrays.edges, np.int32))
    attributes[".corner_vert"].data.foreach_set("value", _flat(arrays.corner_verts, np.int32))
    attributes[".corner_edge"].data.foreach_set("value", _flat(arrays.corner_edges, np.int32))
    # uint32 matches the buffer format Blender copies directly; int32 goes item by item (~250x slower)
    mesh.polygons.foreach_set("loop_start", np.arange(0, n_faces * 4, 4, dtype=np.uintc))
    uv = attributes.new(UV_MAP_NAME, "FLOAT2", "CORNER")
    uv.data.foreach_set("vector", _flat(arrays.corner_uvs, np.float32))
    depth = attributes.new(DEPTH_ATTRIBUTE, "FLOAT", "POINT")
    depth.data.foreach_set("value", _flat(arrays.depth, np.float32))
    mesh.uv_layers.active = mesh.uv_layers[UV_MAP_NAME]
    if arrays.material_index is not None:  # the fill layer's faces use the second material
        index = attributes.new("material_index", "INT", "FACE")
        index.data.foreach_set("value", _flat(arrays.material_index, np.int32))
    if smooth:
        mesh.shade_smooth()
    else:
        mesh.shade_flat()
    mesh.update()


def can_convert_to_point_cloud() -> bool:
    """Whether this Blender has the Mesh -> Point Cloud conversion: release builds before point clouds
    left "experimental" (4.2 LTS to 4.4) are built without it (``blender.points`` then uses a points mesh)."""
    return "POINTCLOUD" in bpy.ops.object.convert.get_rna_type().properties["target"].enum_items


def new_point_cloud(name: str, arrays: PointArrays) -> bpy.types.PointCloud:
    """A new PointCloud datablock: ``position``, ``radius``, ``depth`` and a linear float colour ``Col``.

    The bpy data API cannot size a PointCloud, so the points are written to a vertices-only
    mesh (``foreach_set``) and converted with Blender's own Mesh -> Point Cloud conversion,
    which shares the arrays instead of copying them point by point.
    """
    if not can_convert_to_point_cloud():
        raise DepthAddonError(f"Blender {bpy.app.version_string} cannot make point-cloud objects "
                              "(still an experimental feature in this version); use output='mesh' or a newer Blender")
    mesh = bpy.data.meshes.new(name)
    temp = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(temp)
    cloud = None
    try:
        mesh.vertices.add(len(arrays.positions))
        mesh.attributes["position"].data.foreach_set("vector", _flat(arrays.positions, np.float32))
        color = mesh.attributes.new(COLOR_ATTRIBUTE, "FLOAT_COLOR", "POINT")
        rgba = np.empty((len(arrays.colors), 4), dtype=np.float32)
        rgba[:, :3] = SRGB_TO_LINEAR[arrays.colors]  # float colours are scene-linear
        rgba[:, 3] = 1.0
        color.data.foreach_set("color", rgba.reshape(-1))
        depth = mesh.attributes.new(DEPTH_ATTRIBUTE, "FLOAT", "POINT")
        depth.data.foreach_set("value", _flat(arrays.depth, np.float32))
        with bpy.context.temp_override(active_object=temp, object=temp, selected_objects=[temp],
                                       selected_editable_objects=[temp]):
            bpy.ops.object.convert(target="POINTCLOUD")
        if isinstance(temp.data, bpy.types.PointCloud):
            cloud = temp.data
        else:
            raise RuntimeError("Blender did not convert the points mesh to a point cloud")
        cloud.name = name
        set_point_radius(cloud, arrays.radii)
    except BaseException:
        if cloud is not None:
            bpy.data.objects.remove(temp)
            bpy.data.pointclouds.remove(cloud)
            temp = None
        raise
    finally:
        if temp is not None:
            bpy.data.objects.remove(temp)  # the point cloud outlives its temporary object
        if mesh.name in bpy.data.meshes and bpy.data.meshes[mesh.name] == mesh:
            bpy.data.meshes.remove(mesh)
    return cloud


def set_point_radius(cloud: bpy.types.PointCloud | bpy.types.Mesh, radii: np.ndarray) -> None:
    """Set the (point-domain) ``radius`` attribute (scene units) of every point from (N,) ``radii``."""
    attribute = cloud.attributes.get("radius") or cloud.attributes.new("radius", "FLOAT", "POINT")
    attribute.data.foreach_set("value", _flat(radii, np.float32))


def scale_point_radius(cloud: bpy.types.PointCloud | bpy.types.Mesh, factor: float) -> None:
    """Multiply every point's radius by ``factor`` (changes the point size, keeps the per-point ratios)."""
    attribute = cloud.attributes["radius"]
    radii = np.empty(len(attribute.data), dtype=np.float32)
    attribute.data.foreach_get("value", radii)
    radii *= np.float32(factor)
    attribute.data.foreach_set("value", radii)


def _flat(array: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=dtype).reshape(-1)
