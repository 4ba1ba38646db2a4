"""The 3D Viewport sidebar tab "Depth" and the File > Import / Add / Image menu entries.

Drawing lives in plain functions of ``(layout, context)`` so that tests can draw them into a
real layout in background mode; the Panel classes only forward to them.
"""

from __future__ import annotations

import bpy
from bpy.types import Panel

from ..midas.registry import get_spec
from . import deps
from .modal import running_job
from .operators import DEPTH_ADDON_OT_image_to_object, DEPTH_ADDON_OT_remesh, is_depth_object
from .preferences import ADDON_PACKAGE, custom_weights_dir
from .properties import draw_settings

IMPORT_OP = DEPTH_ADDON_OT_image_to_object.bl_idname


def draw_running(layout, job) -> None:
    fraction, message = job.progress
    box = layout.box()
    if bpy.app.background:  # the progress widget needs a GPU context
        box.label(text=f"{fraction:.0%}", icon="SORTTIME")
    else:
        box.progress(factor=fraction, type="BAR", text=f"{fraction:.0%}")
    box.label(text=message or "starting")
    box.operator("depth_addon.cancel_job", text="Cancel (Esc)", icon="CANCEL").key = "depth"


def draw_source(layout, props, context) -> None:
    layout.row().prop(props, "source", expand=True)
    if props.source == "FILE":
        layout.prop(props, "filepath", text="")
        return
    layout.template_ID(props, "image", open="image.open")
    if props.image is None:
        shown = props.resolve_image(context)
        if shown is not None:
            layout.label(text=f"From the Image Editor: {shown.name}", icon="IMAGE_DATA")
        else:
            layout.label(text="Open or pick an image, or show one in an Image Editor", icon="INFO")


def draw_model(layout, props, context) -> None:
    from ..midas.weights import cached_weights

    layout.prop(props, "model", text="")
    spec = get_spec(props.model)
    row = layout.row(align=True)
    if props.weights:
        row.label(text="Using the checkpoint below", icon="FILE")
    elif (download := running_job(f"download:{spec.name}")) is not None:
        row.label(text=f"Downloading {download.progress[0]:.0%}", icon="SORTTIME")
        row.operator("depth_addon.cancel_job", text="", icon="CANCEL").key = f"download:{spec.name}"
    elif cached_weights(spec.name, custom_weights_dir(context)) is not None:
        row.label(text="Weights downloaded", icon="CHECKMARK")
    else:
        row.label(text=f"Not downloaded (~{spec.size_mb:,} MB)", icon="IMPORT")
        row.operator("depth_addon.download_weights", text="", icon="IMPORT").model = spec.name
    draw_model_facts(layout, spec)
    layout.prop(props, "weights")


def draw_model_facts(layout, spec) -> None:
    """Depth kind, speed and licence of the chosen model; a warning for non-commercial licences."""
    kind = "metric depth in metres" if spec.depth_kind == "metric" else "relative depth"
    layout.label(text=f"{kind.capitalize()}, {spec.speed}, {spec.licence}", icon="INFO")
    if spec.non_commercial:
        layout.label(text="Non-commercial use only", icon="ERROR")


def draw_depth_file(layout, props) -> None:
    layout.prop(props, "depth_path")
    if props.depth_path:
        layout.prop(props, "depth_kind")
        if props.depth_kind == "relative":
            layout.prop(props, "invert_relative")


def draw_run(layout) -> None:
    row = layout.row()
    row.scale_y = 1.5
    row.operator(IMPORT_OP, text="Run", icon="PLAY").use_scene_settings = True
    missing = deps.missing_modules()
    if missing:
        col = layout.column(align=True)
        col.alert = True
        col.label(text=f"{deps.package_names(missing)} missing: depth map files only", icon="ERROR")
        col.alert = False
        col.operator("preferences.addon_show", text="Install in Preferences", icon="PREFERENCES").module = ADDON_PACKAGE


def draw_depth_panel(layout, context) -> None:
    """The "Image to Depth" sidebar panel."""
    props = context.scene.depth_addon
    if (running := running_job("depth")) is not None:
        draw_running(layout, running)
    draw_source(layout.column(), props, context)
    layout.separator()
    draw_model(layout.column(), props, context)
    draw_depth_file(layout.column(), props)
    layout.separator()
    draw_settings(layout.column(), props, main=True)
    draw_run(layout)


def draw_object_panel(layout, context) -> None:
    """The active depth object: what it was made with, and the Re-mesh button."""
    from ..blender.build import stored_settings

    obj = context.active_object
    settings = stored_settings(obj)
    col = layout.column(align=True)
    col.label(text=f"{obj.name}: {settings.output}, {settings.projection}, {settings.depth_kind} depth")
    col.label(text=f"Resolution {settings.resolution}" if settings.stride is None else f"Stride {settings.stride}")
    col = layout.column(align=True)
    col.operator(DEPTH_ADDON_OT_remesh.bl_idname, text="Re-mesh from Stored Depth", icon="FILE_REFRESH")
    col.operator(DEPTH_ADDON_OT_remesh.bl_idname, text="Apply Sidebar Settings",
                 icon="PROPERTIES").use_scene_settings = True


class _SidebarPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Depth"


class VIEW3D_PT_depth_addon(_SidebarPanel, Panel):
    bl_label = "Image to Depth"

    def draw(self, context):
        draw_depth_panel(self.layout, context)


class VIEW3D_PT_depth_addon_more(_SidebarPanel, Panel):
    bl_label = "More Settings"
    bl_parent_id = "VIEW3D_PT_depth_addon"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        draw_settings(self.layout.column(), context.scene.depth_addon, main=False)


class VIEW3D_PT_depth_addon_object(_SidebarPanel, Panel):
    bl_label = "Active Depth Object"

    @classmethod
    def poll(cls, context):
        return is_depth_object(context.active_object)

    def draw(self, context):
        draw_object_panel(self.layout, context)


def menu_import(self, context):
    """File > Import and Add: a file browser for one or more photos."""
    self.layout.operator(IMPORT_OP, text="Image to Depth Mesh", icon="IMAGE_DATA")


def menu_image_editor(self, context):
    """Image Editor > Image: convert the image being shown."""
    image = getattr(context.space_data, "image", None)
    row = self.layout.row()
    row.enabled = image is not None
    op = row.operator(IMPORT_OP, text="Image to Depth Mesh", icon="IMAGE_DATA")
    if image is not None:
        op.image_name = image.name


classes = (VIEW3D_PT_depth_addon, VIEW3D_PT_depth_addon_more, VIEW3D_PT_depth_addon_object)
MENUS = (
    ("TOPBAR_MT_file_import", menu_import),
    ("VIEW3D_MT_add", menu_import),
    ("IMAGE_MT_image", menu_image_editor),
)


def register():
    for menu, func in MENUS:
        getattr(bpy.types, menu).append(func)


def unregister():
    for menu, func in reversed(MENUS):
        getattr(bpy.types, menu).remove(func)
