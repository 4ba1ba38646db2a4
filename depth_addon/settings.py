"""Settings shared by the operator, the CLI and the Python API (no bpy here).

One dataclass describes how depth becomes geometry; the operator's properties, the
CLI's flags and ``depth_addon.api`` keyword arguments all map onto its fields.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import MISSING, dataclass, fields, replace
from typing import Literal

Output = Literal["mesh", "points"]
Projection = Literal["perspective", "relief"]
DepthKind = Literal["inverse", "metric", "relative"]
Shader = Literal["principled", "shadeless", "emission"]  # as Import Images as Planes

# Blender's camera lens is at least 1 mm on our 36 mm sensor (173.6 degrees): stay clearly below.
MAX_FOV_DEG = 170.0
DEFAULT_FOV_DEG = 55.0  # horizontal; used when the photo carries no EXIF focal length


@dataclass(frozen=True)
class BuildSettings:
    """How a depth map becomes a Blender object.

    depth_kind: "inverse" = relative inverse depth, larger = nearer (MiDaS, Depth Anything V2),
                "metric"  = distance along the camera axis in scene units,
                "relative" = a depth picture, lighter = nearer unless ``invert_relative``.
    """

    output: Output = "mesh"
    projection: Projection = "perspective"
    fov_deg: float | None = None          # horizontal field of view; None = EXIF, else DEFAULT_FOV_DEG
    resolution: int = 512                 # vertices along the longer image side (ignored if stride is set)
    stride: int | None = None             # take every stride-th pixel instead
    tear: bool = True                     # drop faces across depth discontinuities
    tear_threshold: float = 0.05          # per face: (max - min) / min camera distance (perspective),
                                          # or max - min nearness in [0, 1] (relief) above this tears;
                                          # judged as on a 512-vertex mesh, so resolution doesn't change it
    fill: bool = True                     # perspective: continue the far side behind every tear (hidden
                                          # background layer) and a rim out to the photo's frame
    fill_width: float = 0.05              # how far the layer reaches behind the near side, as a
                                          # fraction of the photo's longer side
    fill_points: bool = False             # point clouds: add the filled background points too
    depth_kind: DepthKind = "inverse"
    invert_relative: bool = False
    near: float = 1.0                     # distance of the nearest inverse/relative depth
    far: float = 10.0                     # distance of the farthest inverse/relative depth
    relief_strength: float = 0.25         # relief displacement, as a fraction of the image width
    shade_smooth: bool = True
    shader: Shader = "principled"         # principled: lit; shadeless: the photo's colours to the camera,
                                          # unlit (glTF KHR_materials_unlit); emission: glows, lights the scene
    point_size: float = 0.01              # point radius in scene units at the median distance
                                          # (perspective: grows with distance, same size on screen)
    add_camera: bool = True
    set_render_resolution: bool = True    # render size = photo size, so the camera frames it exactly
                                          # (skipped while the scene renders through another camera)

    def __post_init__(self):
        problems = _type_problems(self)
        if problems:  # the range checks below would fail on these with raw TypeErrors
            from .errors import DepthAddonError

            raise DepthAddonError("invalid settings: " + "; ".join(problems))
        if self.stride is None and self.resolution < 2:
            problems.append(f"resolution must be at least 2 (got {self.resolution})")
        if self.stride is not None and self.stride < 1:
            problems.append(f"stride must be at least 1 (got {self.stride})")
        if self.fov_deg is not None and not 0 < self.fov_deg <= MAX_FOV_DEG:
            problems.append(f"fov_deg must be above 0 and at most {MAX_FOV_DEG:g} degrees, the widest a Blender "
                            f"camera can match (got {self.fov_deg})")
        if not 0 < self.near < self.far:
            problems.append(f"need 0 < near < far (got near={self.near}, far={self.far})")
        if self.tear_threshold <= 0:
            problems.append(f"tear_threshold must be > 0 (got {self.tear_threshold}); to keep every face use tear=False")
        if not 0 < self.fill_width <= 1:
            problems.append(f"fill_width must be above 0 and at most 1, a fraction of the longer side "
                            f"(got {self.fill_width})")
        if self.point_size <= 0:
            problems.append(f"point_size must be > 0 (got {self.point_size})")
        for name, value, valid in (("output", self.output, ("mesh", "points")),
                                   ("projection", self.projection, ("perspective", "relief")),
                                   ("depth_kind", self.depth_kind, ("inverse", "metric", "relative")),
                                   ("shader", self.shader, ("principled", "shadeless", "emission"))):
            if value not in valid:
                problems.append(f"{name} must be one of {', '.join(valid)} (got {value!r})")
        if problems:
            from .errors import DepthAddonError

            raise DepthAddonError("invalid settings: " + "; ".join(problems))

    def with_changes(self, **changes) -> BuildSettings:
        """A copy with some fields changed; unknown names raise TypeError naming them."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return replace(self, **changes)


def _type_problems(settings: BuildSettings) -> list[str]:
    """Each field of the kind its annotation says (bools are not numbers here), floats finite.

    Read off the annotations, so a new field is checked without a line here.
    """
    problems = []
    for field in fields(settings):
        value = getattr(settings, field.name)
        kinds = str(field.type).replace(" ", "").split("|")
        if value is None and "None" in kinds:
            continue
        if "bool" in kinds:
            ok = isinstance(value, bool)
        elif "int" in kinds:
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        elif "float" in kinds:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if ok and not math.isfinite(value):
                problems.append(f"{field.name} must be a finite number (got {value})")
                continue
        else:  # Literal names: checked against their valid values in __post_init__
            kinds, ok = ["str"], isinstance(value, str)
        if not ok:
            default = "" if field.default is MISSING else f", e.g. {field.default!r}"
            wanted = " or ".join(kinds).replace("str", "a string").replace("int", "an int").replace(
                "float", "a number").replace("bool", "True/False")
            problems.append(f"{field.name} must be {wanted}{default} (got {type(value).__name__} {value!r})")
    return problems
