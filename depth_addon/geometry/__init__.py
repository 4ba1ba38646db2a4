"""Depth -> vertices, faces, UVs, points and camera in vectorised numpy (never imports bpy).

``build_mesh`` / ``build_points`` are the entry points; ``docs/geometry.md`` explains the
conventions (coordinates, depth-to-distance mapping, tearing).
"""

from .build import CameraModel, MeshArrays, PointArrays, build_mesh, build_points, resolve_fov
from .depth import camera_distance, nearness, resize_depth

__all__ = [
    "CameraModel",
    "MeshArrays",
    "PointArrays",
    "build_mesh",
    "build_points",
    "camera_distance",
    "nearness",
    "resize_depth",
    "resolve_fov",
]
