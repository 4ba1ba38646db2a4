"""Blender properties generated from ``BuildSettings`` plus the sidebar's scene settings.

The geometry settings are declared once, as the fields of ``depth_addon.settings.BuildSettings``;
``settings_annotations()`` turns each field into a bpy property (bool/int/float/Literal enum;
``X | None`` becomes a ``use_<name>`` toggle plus the value). ``FIELD_UI`` only adds labels,
tooltips and limits -- a field added to the dataclass shows up in the operator, the redo panel
and the sidebar without touching this module.
"""

# No ``from __future__ import annotations``: Blender reads the bpy.props annotations as objects.

import types
import typing
from dataclasses import MISSING, fields

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty
from bpy.types import PropertyGroup

from ..midas.registry import DEFAULT_MODEL, specs_by_family
from ..settings import DEFAULT_FOV_DEG, MAX_FOV_DEG, BuildSettings

# Labels, tooltips and limits; everything here is optional per field.
#   none_default: value shown while a ``X | None`` field is switched off
#   items: {value: (label, description, icon)} for Literal fields
FIELD_UI: dict[str, dict] = {
    "output": {"name": "Output", "description": "What to build from the depth", "items": {
        "mesh": ("Mesh", "A displaced grid mesh textured with the photo", "MESH_GRID"),
        "points": ("Point Cloud", "One coloured point per sample", "POINTCLOUD_DATA"),
    }},
    "projection": {"name": "Projection", "description": "How depth becomes 3D positions", "items": {
        "perspective": ("Perspective", "Unproject through a pinhole camera: the camera sees exactly the photo", "VIEW_PERSPECTIVE"),
        "relief": ("Relief", "A flat plane displaced towards the viewer (bas-relief)", "VIEW_ORTHO"),
    }},
    "fov_deg": {"name": "Field of View", "description": f"Horizontal field of view in degrees. Off: from the photo's EXIF focal length, else {DEFAULT_FOV_DEG:g}°",
                "min": 1.0, "max": MAX_FOV_DEG, "none_default": DEFAULT_FOV_DEG},
    "resolution": {"name": "Resolution", "description": "Vertices along the longer image side",
                   "min": 2, "max": 16384, "soft_max": 2048},
    "stride": {"name": "Pixel Stride", "description": "Take every n-th pixel instead of a fixed resolution",
               "min": 1, "max": 256, "soft_max": 16, "none_default": 4},
    "tear": {"name": "Tear at Edges", "description": "Drop faces across depth discontinuities, so foreground and background separate"},
    "tear_threshold": {"name": "Tear Threshold", "description": "Relative depth jump that tears a face",
                       "min": 1e-4, "max": 10.0, "soft_max": 0.5, "precision": 3},
    "fill": {"name": "Fill Behind Tears", "description": "Perspective meshes: continue the far side behind every "
             "tear (a hidden background layer with an extended copy of the photo) and add a rim out to the frame, "
             "so nothing of the world shows through the camera and camera moves find a background"},
    "fill_width": {"name": "Fill Width", "description": "How far the background continues behind the near side, "
                   "as a fraction of the photo's longer side", "min": 1e-3, "max": 1.0, "soft_max": 0.2, "precision": 3},
    "fill_points": {"name": "Fill Points", "description": "Point clouds: add the filled background points too"},
    "depth_kind": {"name": "Depth Kind", "description": "What the depth values mean", "items": {
        "inverse": ("Inverse (MiDaS)", "Relative inverse depth (MiDaS, Depth Anything V2): larger = nearer", "NONE"),
        "metric": ("Metric", "Distance along the camera axis, in scene units", "NONE"),
        "relative": ("Relative Picture", "A depth picture: lighter = nearer (see Invert)", "NONE"),
    }},
    "invert_relative": {"name": "Invert", "description": "Relative depth pictures: darker = nearer"},
    "near": {"name": "Near", "description": "Distance of the nearest point", "min": 1e-4, "soft_max": 100.0, "unit": "LENGTH"},
    "far": {"name": "Far", "description": "Distance of the farthest point", "min": 1e-4, "soft_max": 1000.0, "unit": "LENGTH"},
    "relief_strength": {"name": "Relief Strength", "description": "Relief displacement, as a fraction of the image width",
                        "min": 0.0, "soft_max": 2.0},
    "shade_smooth": {"name": "Shade Smooth", "description": "Smooth shading on the mesh"},
    "shader": {"name": "Shader", "description": "Material of the photo, as in Import Images as Planes", "items": {
        "principled": ("Principled", "Principled BSDF: lit by the scene's lights and world", "NONE"),
        "shadeless": ("Shadeless", "The photo's own colours to the camera, unaffected by lights; "
                      "exported to glTF as unlit", "NONE"),
        "emission": ("Emission", "Emits the photo's colours, lighting the scene around it", "NONE"),
    }},
    "point_size": {"name": "Point Size", "description": "Radius of each point", "min": 1e-6, "soft_max": 0.1,
                   "precision": 4, "unit": "LENGTH"},
    "add_camera": {"name": "Add Camera", "description": "Add a camera that sees the object exactly as the photo"},
    "set_render_resolution": {"name": "Set Render Resolution", "description": "Set the scene's render size to the photo's"},
}

# Drawn at the top of the sidebar and the operator; every other field goes under "More".
MAIN_FIELDS = ("output", "projection", "resolution", "tear", "tear_threshold", "fill", "fill_width", "near", "far",
               "add_camera")
# Drawn next to the depth map file (they only matter for a depth file), not with the geometry.
DEPTH_FILE_FIELDS = ("depth_kind", "invert_relative")
# A field is greyed out unless another field has a value (``None`` = a Literal field not drawn expanded).
ACTIVE_WHEN = {
    "tear_threshold": ("tear", True),
    "fill": ("projection", "perspective"),
    "fill_width": ("fill", True),
    "fill_points": ("output", "points"),
    "relief_strength": ("projection", "relief"),
    "point_size": ("output", "points"),
    "invert_relative": ("depth_kind", "relative"),
    "shade_smooth": ("output", "mesh"),
}

DEVICE_ITEMS = [
    ("auto", "Automatic", "CUDA if available, then Apple MPS, else CPU"),
    ("cpu", "CPU", "Always run on the CPU"),
    ("cuda", "CUDA", "An NVIDIA GPU (falls back to the CPU when out of memory)"),
    ("mps", "Apple Metal", "Apple Silicon GPU"),
]
PRECISION_ITEMS = [
    ("fp32", "Full (fp32)", "Most faithful to the official results"),
    ("fp16", "Half (fp16)", "Faster on GPUs (slow on the CPU), less memory; not exact: differs from fp32"),
    ("bf16", "BFloat16", "Half memory, faster on recent CPUs; not exact: differed from fp32 by 1-13% on the CPU"),
]
# Static list: Blender keeps pointers into enum items, so they must outlive the property.
# One heading (an item with an empty identifier) per family; each model's tooltip gives its
# size, speed and licence from the table.
MODEL_ITEMS = [item for family, specs in specs_by_family().items()
               for item in [("", family, ""), *((spec.name, spec.label, spec.summary) for spec in specs)]]


def _title(name: str) -> str:
    return name.replace("_", " ").title()


def _optional_inner(hint):
    """``X`` for ``X | None`` / ``Optional[X]``, else None."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return None


def _property(name: str, hint, default, ui: dict):
    """One bpy property for a dataclass field of type ``hint``."""
    kwargs = {"name": ui.get("name", _title(name)), "description": ui.get("description", "")}
    if typing.get_origin(hint) is typing.Literal:
        labels = ui.get("items", {})
        items = []
        for index, value in enumerate(typing.get_args(hint)):
            label, description, icon = labels.get(value, (_title(value), "", "NONE"))
            items.append((value, label, description, icon, index))
        return EnumProperty(items=items, default=default, **kwargs)
    if hint is bool:
        return BoolProperty(default=bool(default), **kwargs)
    limits = {k: ui[k] for k in ("min", "max", "soft_min", "soft_max") if k in ui}
    if hint is int:
        return IntProperty(default=int(default), **limits, **kwargs)
    if hint is float:
        extra = {k: ui[k] for k in ("precision", "unit") if k in ui}
        return FloatProperty(default=float(default), **limits, **extra, **kwargs)
    if hint is str:
        return StringProperty(default=str(default), **kwargs)
    raise TypeError(f"BuildSettings.{name}: no Blender property for type {hint!r}; extend ui/properties.py")


def settings_annotations() -> dict[str, object]:
    """``{property_name: bpy property}`` for every BuildSettings field (toggles for optional ones)."""
    hints = typing.get_type_hints(BuildSettings, include_extras=False)
    annotations: dict[str, object] = {}
    for field in fields(BuildSettings):
        ui = FIELD_UI.get(field.name, {})
        default = field.default if field.default is not MISSING else field.default_factory()  # type: ignore[misc]
        hint = hints[field.name]
        inner = _optional_inner(hint)
        if inner is not None:
            label = ui.get("name", _title(field.name))
            annotations[f"use_{field.name}"] = BoolProperty(
                name=f"Set {label}", default=default is not None,
                description=f"Use the value below; off: automatic. {ui.get('description', '')}".strip(),
            )
            value = default if default is not None else ui.get("none_default", inner())
            annotations[field.name] = _property(field.name, inner, value, ui)
        else:
            annotations[field.name] = _property(field.name, hint, default, ui)
    return annotations


def optional_fields() -> frozenset[str]:
    hints = typing.get_type_hints(BuildSettings)
    return frozenset(f.name for f in fields(BuildSettings) if _optional_inner(hints[f.name]) is not None)


def settings_from_props(props) -> BuildSettings:
    """The BuildSettings that a property holder (operator, scene settings) describes."""
    optional = optional_fields()
    values = {}
    for field in fields(BuildSettings):
        if field.name in optional and not getattr(props, f"use_{field.name}"):
            values[field.name] = None
        else:
            value = getattr(props, field.name)
            # Float properties are float32: 0.05 reads back as 0.0500000007; give the typed value.
            values[field.name] = float(f"{value:.7g}") if isinstance(value, float) else value
    return BuildSettings(**values)


def settings_to_props(settings: BuildSettings, props) -> None:
    """Write ``settings`` into a property holder (``None`` switches the optional toggle off)."""
    optional = optional_fields()
    for field in fields(BuildSettings):
        value = getattr(settings, field.name)
        if field.name in optional:
            setattr(props, f"use_{field.name}", value is not None)
            if value is None:
                continue
        setattr(props, field.name, value)


def draw_setting(layout, props, name: str) -> None:
    """One setting, with its ``use_`` toggle for optional fields, greyed out when it has no effect."""
    row = layout.row(align=True)
    if name in ACTIVE_WHEN:
        other, wanted = ACTIVE_WHEN[name]
        row.active = getattr(props, other) == wanted
    if f"use_{name}" in props.bl_rna.properties:
        row.prop(props, f"use_{name}", text="")
        sub = row.row(align=True)
        sub.active = getattr(props, f"use_{name}")
        sub.prop(props, name)
    else:
        row.prop(props, name)


def draw_settings(layout, props, main: bool | None = None, skip=DEPTH_FILE_FIELDS) -> None:
    """The geometry settings: ``main=True`` the MAIN_FIELDS, ``False`` the rest, ``None`` all."""
    layout.use_property_split = True
    layout.use_property_decorate = False
    for field in fields(BuildSettings):
        is_main = field.name in MAIN_FIELDS
        if field.name not in skip and (main is None or main == is_main):
            if field.name == "output":
                layout.row().prop(props, "output", expand=True)
            else:
                draw_setting(layout, props, field.name)


# Mix-in carrying every geometry setting; Blender collects annotations from base classes.
SettingsProperties = type("SettingsProperties", (), {"__annotations__": settings_annotations(),
                                                     "__doc__": "The BuildSettings fields as properties."})


def model_property(**kwargs):
    return EnumProperty(name="Model", description="Depth model: bigger ones are slower and sharper; "
                        "metric models give distances in metres",
                        items=MODEL_ITEMS, default=DEFAULT_MODEL, **kwargs)


def source_image_from_editors(context) -> bpy.types.Image | None:
    """The image shown in an open Image Editor (the current window first)."""
    windows = [context.window] if context.window else []
    windows += [w for w in context.window_manager.windows if w != context.window]
    for window in windows:
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR" and (image := area.spaces.active.image) is not None:
                return image
    return None


class DepthAddonSceneSettings(SettingsProperties, PropertyGroup):
    """What the sidebar's Run button imports (``scene.depth_addon``)."""

    source: EnumProperty(
        name="Source", description="Where the photo comes from",
        items=[("IMAGE", "Image", "An image datablock; empty: the image shown in an open Image Editor", "IMAGE_DATA", 0),
               ("FILE", "File", "An image file on disk", "FILEBROWSER", 1)],
        default="IMAGE",
    )
    image: PointerProperty(name="Image", type=bpy.types.Image,
                           description="Photo to convert; empty: the image shown in an open Image Editor")
    filepath: StringProperty(name="File", subtype="FILE_PATH", description="Photo file to convert")
    model: model_property()
    weights: StringProperty(name="Checkpoint", subtype="FILE_PATH",
                            description="The official weights file of this model (.pt / .pth); empty: the weights folder")
    depth_path: StringProperty(name="Depth Map", subtype="FILE_PATH",
                               description="Optional: use this depth file instead of running the network")

    def resolve_image(self, context) -> bpy.types.Image | None:
        return self.image or source_image_from_editors(context)


classes = (DepthAddonSceneSettings,)


def register():
    bpy.types.Scene.depth_addon = PointerProperty(type=DepthAddonSceneSettings)


def unregister():
    del bpy.types.Scene.depth_addon
