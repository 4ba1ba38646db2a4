"""Add-on preferences: device, precision, weights folder, per-model downloads, torch installer."""

# No ``from __future__ import annotations``: Blender reads the bpy.props annotations as objects.

from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy.types import AddonPreferences

from ..midas.registry import MODEL_SPECS, specs_by_family
from . import deps
from .modal import running_job
from .properties import DEVICE_ITEMS, PRECISION_ITEMS

# The add-on's root package: "depth_addon", or "bl_ext.<repo>.depth_addon" once installed.
ADDON_PACKAGE = __package__.rpartition(".")[0]


def site_packages_dir() -> Path:
    """Where the installer puts torch + timm: outside the extension, one folder per Python version."""
    return deps.dependencies_dir()


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


def custom_weights_dir(context=None) -> Path | None:
    """The Weights Folder the preferences name (None: the weights manager's default), passed to each run."""
    prefs = get_preferences(context)
    if prefs is not None and prefs.weights_dir:
        return Path(bpy.path.abspath(prefs.weights_dir))
    return None


def weights_folder(context=None) -> Path:
    """The folder the preferences name, else the command line's weights cache (one download serves both)."""
    from ..midas.weights import weights_dir

    return weights_dir(custom_weights_dir(context))


def weights_cache_files(folder: Path) -> list[Path]:
    """The model table's weights files (and partial downloads) in ``folder``; other files are not ours."""
    if not folder.is_dir():
        return []
    names = {spec.filename for spec in MODEL_SPECS}
    return sorted(path for path in folder.iterdir()
                  if path.is_file() and (path.name in names or path.name.split(".part")[0] in names))


def _size_text(paths) -> str:
    total = sum(path.stat().st_size for path in paths)
    return f"{total / 2**30:.1f} GB" if total >= 2**30 else f"{total / 2**20:.0f} MB"


def online_message() -> str:
    if bpy.app.online_access_override:
        return "Blender was started in offline mode: restart it without --offline-mode"
    return "Online access is off: enable it in Preferences > System > Network > Allow Online Access"


PLATFORM = deps.current_platform()
# This machine's installer choices, the default picked from its GPU (checked without importing anything).
TORCH_BUILD_ITEMS = [(build.id, build.label, f"{build.description}. {build.download}, from {build.index_name} "
                      f"({build.index_url})") for build in deps.builds_for(PLATFORM)] or [
    ("NONE", "None", deps.unsupported_reason(PLATFORM) or "")]
TORCH_BUILD_DEFAULT = getattr(deps.default_build(PLATFORM), "id", "NONE")


def chosen_build(context=None):
    """The preferences' torch build (the platform's default without preferences); None where there is none."""
    prefs = get_preferences(context)
    build_id = prefs.torch_build if prefs is not None else TORCH_BUILD_DEFAULT
    return next((build for build in deps.builds_for(PLATFORM) if build.id == build_id), None)


class DepthAddonPreferences(AddonPreferences):
    bl_idname = ADDON_PACKAGE

    device: EnumProperty(name="Device", description="Where the depth network runs", items=DEVICE_ITEMS,
                         default="auto")
    precision: EnumProperty(name="Precision", description="Floating-point precision of the network",
                            items=PRECISION_ITEMS, default="fp32")
    weights_dir: StringProperty(
        name="Weights Folder", subtype="DIR_PATH",
        description="Where model weights are kept; empty: the command line's weights cache (one download serves both)",
    )
    torch_build: EnumProperty(
        name="torch Build", description="Which torch the installer downloads, and from which index",
        items=TORCH_BUILD_ITEMS, default=TORCH_BUILD_DEFAULT,
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
    folder = weights_folder(context)
    files = weights_cache_files(folder)
    row = col.row()
    row.label(text=f"{folder}: {len(files)} file{'s' if len(files) != 1 else ''}, {_size_text(files)}")
    row.operator("wm.path_open", text="", icon="FILE_FOLDER").filepath = str(folder)
    row.operator("depth_addon.clear_weights", text="Clear", icon="TRASH")
    _draw_models(layout.box(), folder)


def _draw_dependencies(prefs, box) -> None:
    box.label(text="torch + timm", icon="SCRIPTPLUGINS")
    install = running_job("install")
    missing = deps.missing_modules()
    col = box.column()
    if install is not None:
        fraction, message = install.progress
        col.label(text=f"Installing ({fraction:.0%}): {message}", icon="SORTTIME")
        col.operator("depth_addon.cancel_job", text="Cancel", icon="CANCEL").key = "install"
        return
    folder = site_packages_dir()
    if missing:
        col.alert = True
        col.label(text=f"Not found in Blender's Python: {deps.package_names(missing)}", icon="ERROR")
        col.alert = False
        col.label(text="Depth map files import without them; running MiDaS on photos needs them")
    else:
        versions = ", ".join(f"{req.distribution} {deps.installed_version(req.distribution) or '?'}"
                             for req in deps.REQUIREMENTS)
        col.label(text=f"Found: {versions}", icon="CHECKMARK")
    reason = deps.unsupported_reason(PLATFORM)
    if reason is not None:
        col.label(text=reason, icon="INFO")
    else:
        col.prop(prefs, "torch_build")
        build = chosen_build()
        if build is not None:
            col.label(text=f"{build.description}: {build.download}, from {build.index_name}")
        col.label(text=f"Installs into {folder}")
        col.operator("depth_addon.install_dependencies", icon="IMPORT",
                     text="Install torch, timm, OpenCV, Pillow" if missing else "Reinstall torch, timm, OpenCV, Pillow")
    if folder.is_dir():
        col.operator("depth_addon.remove_dependencies", icon="TRASH")


def _draw_models(box, folder: Path) -> None:
    box.label(text="Model Weights", icon="NETWORK_DRIVE")
    if not bpy.app.online_access:
        box.label(text=online_message(), icon="INFO")
    for family, specs in specs_by_family().items():
        box.label(text=family)
        _draw_family(box.grid_flow(row_major=True, columns=3, even_columns=False, align=False), specs, folder)


def _draw_family(grid, specs, folder: Path) -> None:
    from ..midas.weights import cached_weights

    for spec in specs:
        grid.label(text=spec.label)
        grid.label(text=f"{spec.description}, ~{spec.size_mb:,} MB, {spec.licence}",
                   icon="ERROR" if spec.non_commercial else "NONE")
        download = running_job(f"download:{spec.name}")
        if download is not None:
            fraction, _ = download.progress
            grid.operator("depth_addon.cancel_job", text=f"{fraction:.0%} (Cancel)",
                          icon="CANCEL").key = f"download:{spec.name}"
        elif cached_weights(spec.name, folder) is not None:
            grid.label(text="Downloaded", icon="CHECKMARK")
        else:
            grid.operator("depth_addon.download_weights", text="Download", icon="IMPORT").model = spec.name


classes = (DepthAddonPreferences,)
