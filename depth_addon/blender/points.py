"""Point output: a real PointCloud where Blender can make one, else a points mesh + geometry nodes.

Blender releases before point clouds left "experimental" (4.2 LTS to 4.4) cannot convert a
mesh to a point cloud, so there the points are a vertices-only mesh (one vertex per point with
the same ``Col``, ``depth`` and ``radius`` attributes a PointCloud gets) plus a geometry-nodes
modifier (Mesh to Points with the stored radius, Set Material) that renders them as points in
Cycles and Eevee. The node group is made once per file and shared by every such object.
Only APIs that exist in Blender 4.2 are used here.
"""

from __future__ import annotations

import bpy
import numpy as np

from ..geometry import PointArrays
from .mesh import (
    COLOR_ATTRIBUTE,
    DEPTH_ATTRIBUTE,
    SRGB_TO_LINEAR,
    _flat,
    can_convert_to_point_cloud,
    new_point_cloud,
    set_point_radius,
)

NODE_GROUP_NAME = "Depth Addon Points"
MODIFIER_NAME = "Depth Addon Points"
RADIUS_ATTRIBUTE = "radius"
_GROUP_MARK = "depth_addon_points"  # custom property on the node group: found again even if renamed
_GROUP_VERSION = 1


def new_points_data(name: str, arrays: PointArrays, point_cloud: bool | None = None
                    ) -> bpy.types.PointCloud | bpy.types.Mesh:
    """A PointCloud, or a points mesh that needs ``add_points_modifier`` on its object.

    point_cloud: None = a PointCloud where this Blender can make one; False = the points mesh
    (as on Blender 4.2-4.4, on any Blender); True = a PointCloud.
    """
    if can_convert_to_point_cloud() if point_cloud is None else point_cloud:
        return new_point_cloud(name, arrays)
    mesh = bpy.data.meshes.new(name)
    try:
        fill_points_mesh(mesh, arrays)
    except BaseException:
        bpy.data.meshes.remove(mesh)
        raise
    return mesh


def fill_points_mesh(mesh: bpy.types.Mesh, arrays: PointArrays) -> None:
    """Replace ``mesh``'s geometry with one loose vertex per point: ``position``, linear FLOAT_COLOR
    ``Col``, ``depth`` and ``radius`` (the attributes a PointCloud gets); materials stay."""
    mesh.clear_geometry()
    mesh.vertices.add(len(arrays.positions))
    attributes = mesh.attributes
    attributes["position"].data.foreach_set("vector", _flat(arrays.positions, np.float32))
    rgba = np.empty((len(arrays.colors), 4), dtype=np.float32)
    rgba[:, :3] = SRGB_TO_LINEAR[arrays.colors]  # float colours are scene-linear
    rgba[:, 3] = 1.0
    color = attributes.new(COLOR_ATTRIBUTE, "FLOAT_COLOR", "POINT")
    color.data.foreach_set("color", rgba.reshape(-1))
    depth = attributes.new(DEPTH_ATTRIBUTE, "FLOAT", "POINT")
    depth.data.foreach_set("value", _flat(arrays.depth, np.float32))
    set_point_radius(mesh, arrays.radii)
    mesh.update()


def points_modifier(obj: bpy.types.Object):
    """The object's Depth Addon Points modifier, or None."""
    for modifier in obj.modifiers:
        if modifier.type == "NODES" and modifier.node_group is not None and _is_points_group(modifier.node_group):
            return modifier
    return None


def add_points_modifier(obj: bpy.types.Object, material: bpy.types.Material | None) -> bpy.types.Modifier:
    """Give a points-mesh object the shared geometry-nodes modifier (once) that renders its vertices
    as points with radius ``radius``, coloured by ``material``."""
    modifier = points_modifier(obj)
    if modifier is None:
        modifier = obj.modifiers.new(MODIFIER_NAME, "NODES")
        modifier.node_group = points_node_group()
    if material is not None:
        modifier[modifier.node_group.interface.items_tree["Material"].identifier] = material
    obj.update_tag()
    return modifier


def points_node_group() -> bpy.types.GeometryNodeTree:
    """The shared "Depth Addon Points" node group, made on first use:
    Mesh to Points (vertices, radius from the ``radius`` attribute) -> Set Material (group input)."""
    for group in bpy.data.node_groups:
        if _is_points_group(group) and group.library is None:
            return group
    group = bpy.data.node_groups.new(NODE_GROUP_NAME, "GeometryNodeTree")
    group[_GROUP_MARK] = _GROUP_VERSION
    group.is_modifier = True
    interface = group.interface
    interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    interface.new_socket("Material", in_out="INPUT", socket_type="NodeSocketMaterial")
    interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = group.nodes, group.links
    group_in = nodes.new("NodeGroupInput")
    group_out = nodes.new("NodeGroupOutput")
    to_points = nodes.new("GeometryNodeMeshToPoints")
    to_points.mode = "VERTICES"
    radius = nodes.new("GeometryNodeInputNamedAttribute")
    radius.data_type = "FLOAT"
    radius.inputs["Name"].default_value = RADIUS_ATTRIBUTE
    set_material = nodes.new("GeometryNodeSetMaterial")
    group_in.location, radius.location = (-500, 0), (-500, -200)
    to_points.location, set_material.location, group_out.location = (-250, 0), (0, 0), (250, 0)
    links.new(group_in.outputs["Geometry"], to_points.inputs["Mesh"])
    links.new(radius.outputs["Attribute"], to_points.inputs["Radius"])
    links.new(to_points.outputs["Points"], set_material.inputs["Geometry"])
    links.new(group_in.outputs["Material"], set_material.inputs["Material"])
    links.new(set_material.outputs["Geometry"], group_out.inputs["Geometry"])
    return group


def _is_points_group(group) -> bool:
    if group.bl_idname != "GeometryNodeTree" or group.get(_GROUP_MARK) != _GROUP_VERSION:
        return False
    sockets = {(item.in_out, item.name, item.socket_type) for item in group.interface.items_tree
               if item.item_type == "SOCKET"}
    return {("INPUT", "Geometry", "NodeSocketGeometry"), ("INPUT", "Material", "NodeSocketMaterial"),
            ("OUTPUT", "Geometry", "NodeSocketGeometry")} <= sockets
