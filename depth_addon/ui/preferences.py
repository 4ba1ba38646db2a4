"""Add-on preferences: device, precision, weights folder, per-model downloads, torch installer."""

# No ``from __future__ import annotations``: Blender reads the bpy.props annotations as objects.

from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy.types import AddonPreferences

from ..midas.registry import specs_by_family
from . import deps, jobs
from .properties import DEVICE_ITEMS, PRECISION_ITEMS

# The add-on's root package: "depth_addon", or "bl_ext.<repo>.depth_addon" once installed.
ADDON_PACKAGE = __package__.rpartition(".")[0]


def user_dir(name: str, create: bool = False) -> Path:
    """A folder in the extension's user directory (kept across upgrades), e.g. ``weights``."""
    try:
        return Path(bpy.utils.extension_path_user(ADDON_PACKAGE, path=name, create=create))
    except ValueError:  # registered from a source checkout, not installed as an extension
        return Path(bpy.utils.user_resource("DATAFILES", path=f"{ADDON_PACKAGE}/{name}", create=create))


def site_packages_dir() -> Path:
    return user_dir("site-packages")


def get_preferences(context=None):
    """This add-on's preferences, or None when it was registered without being enabled as an add-on."""
    addon = (context or bpy.context).preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None


def device(context=None) -> str:
    prefs = get_preferences(context)
    return prefs.device if prefs is not None else "auto"


def precision(context=None) -> str:
    prefs = get_preferences(context)
    return prefs.precision if prefs is not None else "fp32"


def weights_folder(context=None) -> Path:
    """The folder the preferences name, else the extension's ``weights`` user folder."""
    prefs = get_preferences(context)
    if prefs is not None and prefs.weights_dir:
        return Path(bpy.path.abspath(prefs.weights_dir))
    return user_dir("weights", create=True)


def apply_weights_folder(context=None) -> None:
    """Make the weights manager use the preferences' folder by default."""
    from ..midas.weights import set_default_weights_dir

    set_default_weights_dir(weights_folder(context))


def _weights_dir_changed(self, context):
    apply_weights_folder(context)


def online_message() -> str:
    if bpy.app.online_access_override:
        return "Blender was started in offline mode: restart it without --offline-mode"
    return "Online access is off: enable it in Preferences > System > Network > Allow Online Access"


class DepthAddonPreferences(AddonPreferences):
    bl_idname = ADDON_PACKAGE

    device: EnumProperty(name="Device", description="Where the depth network runs", items=DEVICE_ITEMS,
                         default="auto")
    precision: EnumProperty(name="Precision", description="Floating-point precision of the network",
                            items=PRECISION_ITEMS, default="fp32")
    weights_dir: StringProperty(
        name="Weights Folder", subtype="DIR_PATH", update=_weights_dir_changed,
        description="Where model weights are kept; empty: the extension's user folder",
    )
    torch_build: EnumProperty(
        name="torch Build", description="Which torch the installer downloads",
        items=[("DEFAULT", "Default", "The standard build from PyPI (CUDA on Linux and Windows, Metal on macOS)"),
               ("CPU", "CPU Only", "A much smaller download that runs on the CPU only")],
        default="DEFAULT",
    )

    def draw(self, context):
        draw_preferences(self, self.layout, context)


def draw_preferences(prefs, layout, context) -> None:
    """The preferences UI (a function of a real layout, so tests can draw it headless)."""
    layout.use_property_split = True
    layout.use_property_decorate = False
    _draw_dependencies(prefs, layout.box())
    col = layout.column()
    col.prop(prefs, "device")
    col.prop(prefs, "precision")
    col.prop(prefs, "weights_dir")
    row = col.row()
    row.label(text=str(weights_folder(context)) if not prefs.weights_dir else "")
    row.operator("wm.path_open", text="Open Folder", icon="FILE_FOLDER").filepath = str(weights_folder(context))
    _draw_models(layout.box(), context)


def _draw_dependencies(prefs, box) -> None:
    box.label(text="torch + timm", icon="SCRIPTPLUGINS")
    install = jobs.ACTIVE.get("install")
    missing = deps.missing_modules()
    col = box.column()
    if install is not None and not install.done:
        fraction, message = install.progress
        col.label(text=f"Installing ({fraction:.0%}): {message}", icon="SORTTIME")
        col.operator("depth_addon.cancel_job", text="Cancel", icon="CANCEL").key = "install"
        return
    if missing:
        col.alert = True
        col.label(text=f"Not found in Blender's Python: {', '.join(missing)}", icon="ERROR")
        col.alert = False
        col.label(text=f"The installer puts them in {site_packages_dir()}")
    else:
        distributions = (requirement.split("==")[0] for requirement in deps.PACKAGES)
        versions = ", ".join(f"{name} {deps.installed_version(name) or '?'}" for name in distributions)
        col.label(text=f"Found: {versions}", icon="CHECKMARK")
    col.prop(prefs, "torch_build")
    col.operator("depth_addon.install_dependencies", icon="IMPORT",
                 text="Install torch + timm" if missing else "Reinstall torch + timm")


def _draw_models(box, context) -> None:
    box.label(text="Model Weights", icon="NETWORK_DRIVE")
    if not bpy.app.online_access:
        box.label(text=online_message(), icon="INFO")
    for family, specs in specs_by_family().items():
        box.label(text=family)
        _draw_family(box.grid_flow(row_major=True, columns=3, even_columns=False, align=False), specs)


def _draw_family(grid, specs) -> None:
    from ..midas.weights import cached_weights

    for spec in specs:
        grid.label(text=spec.label)
        grid.label(text=f"{spec.description}, ~{spec.size_mb:,} MB, {spec.licence}",
                   icon="ERROR" if spec.non_commercial else "NONE")
        download = jobs.ACTIVE.get(f"download:{spec.name}")
        if download is not None and not download.done:
            fraction, _ = download.progress
            grid.operator("depth_addon.cancel_job", text=f"{fraction:.0%} (Cancel)",
                          icon="CANCEL").key = f"download:{spec.name}"
        elif cached_weights(spec.name) is not None:
            grid.label(text="Downloaded", icon="CHECKMARK")
        else:
            grid.operator("depth_addon.download_weights", text="Download", icon="IMPORT").model = spec.name


classes = (DepthAddonPreferences,)
