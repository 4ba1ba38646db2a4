"""Settings shared by the operator, the CLI and the Python API (no bpy here).

One dataclass describes how depth becomes geometry; the operator's properties, the
CLI's flags and ``depth_addon.api`` keyword arguments all map onto its fields.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

Output = Literal["mesh", "points"]
Projection = Literal["perspective", "relief"]
DepthKind = Literal["inverse", "metric", "relative"]

DEFAULT_FOV_DEG = 55.0  # horizontal; used when the photo carries no EXIF focal length


@dataclass(frozen=True)
class BuildSettings:
    """How a depth map becomes a Blender object.

    depth_kind: "inverse" = MiDaS relative inverse depth (larger = nearer),
                "metric"  = distance along the camera axis in scene units,
                "relative" = a depth picture, lighter = nearer unless ``invert_relative``.
    """

    output: Output = "mesh"
    projection: Projection = "perspective"
    fov_deg: float | None = None          # horizontal field of view; None = EXIF, else DEFAULT_FOV_DEG
    resolution: int = 512                 # vertices along the longer image side (ignored if stride is set)
    stride: int | None = None             # take every stride-th pixel instead
    tear: bool = True                     # drop faces across depth discontinuities
    tear_threshold: float = 0.05          # relative depth jump that tears a face
    depth_kind: DepthKind = "inverse"
    invert_relative: bool = False
    near: float = 1.0                     # distance of the nearest inverse/relative depth
    far: float = 10.0                     # distance of the farthest inverse/relative depth
    relief_strength: float = 0.25         # relief displacement, as a fraction of the image width
    shade_smooth: bool = True
    shadeless: bool = False               # emission material instead of Principled BSDF
    point_size: float = 0.01
    add_camera: bool = True
    set_render_resolution: bool = False

    def with_changes(self, **changes) -> BuildSettings:
        """A copy with some fields changed; unknown names raise TypeError naming them."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return replace(self, **changes)
