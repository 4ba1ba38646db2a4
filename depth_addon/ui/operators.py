"""Operators: thin wrappers around the bpy-free core (bl_pkg style).

Each long operator builds a ``jobs.Job`` from its properties on the main thread and runs it
with ``modal.JobOperator``: synchronously (background mode, scripts, redo) or in its thread,
polled by a modal timer with progress in the status bar; Esc cancels. The result is turned
into Blender data on the main thread, in ``finish``. Failures are reported with
``self.report`` and return ``{'CANCELLED'}``, so the scene and the undo history stay as they were.
"""

# No ``from __future__ import annotations``: Blender reads the bpy.props annotations as objects.

import os
import sys

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, StringProperty
from bpy.types import Operator, OperatorFileListElement

from ..depth_job import DepthInput, DepthJob, DepthResult
from ..errors import DepthAddonError
from ..settings import BuildSettings
from . import deps, jobs, preferences
from .modal import ACTIVE, JobOperator, report_exception, running_job
from .properties import (
    DEVICE_ITEMS,
    SettingsProperties,
    draw_settings,
    model_property,
    optional_fields,
    settings_from_props,
    settings_to_props,
)

IMAGE_FILTER = "*.jpg;*.jpeg;*.png;*.tif;*.tiff;*.webp;*.bmp;*.tga"  # what imageio.read_image (Pillow) reads


def _poll_dependencies(cls) -> bool:
    missing = deps.missing_modules()
    if missing:
        cls.poll_message_set(deps.missing_message(missing))
        return False
    return True


def _read_with_blender() -> bool:
    """Without Pillow or OpenCV (a stock Blender), photos and depth files are read by Blender itself."""
    return any(module in deps.missing_modules() for module in ("PIL", "cv2"))


def _read_pictures_with_blender(inputs) -> None:
    """Fill in each input's pixels and depth on the main thread (Blender's image loading is bpy)."""
    from ..blender import pictures

    for item in inputs:
        if item.rgb is None:
            item.rgb = pictures.read_rgb(item.path)
        item.depth = pictures.read_depth(item.depth_path)


def draw_import_options(layout, props) -> None:
    """The import operator's options (file browser side bar and redo panel); ``props``: its properties."""
    layout.use_property_split = True
    layout.use_property_decorate = False
    layout.prop(props, "model")
    layout.prop(props, "weights")
    layout.prop(props, "device")
    layout.prop(props, "depth_path")
    if props.depth_path:
        layout.prop(props, "depth_kind")
        layout.prop(props, "invert_relative")
    draw_settings(layout.column(heading="Geometry"), props, main=True)
    draw_settings(layout.column(heading="More"), props, main=False)


class DEPTH_ADDON_OT_image_to_object(JobOperator, SettingsProperties, Operator):
    """Estimate depth for photos with a depth network and build textured geometry with a matching camera"""

    bl_idname = "depth_addon.image_to_object"
    bl_label = "Image to Depth Mesh"
    bl_options = {"REGISTER", "UNDO"}
    show_in_header = True
    _build_settings = None   # the BuildSettings of this run, read from the properties by make_job

    filepath: StringProperty(name="File", subtype="FILE_PATH", options={"SKIP_SAVE"},
                             description="Photo file to convert")
    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})
    files: CollectionProperty(type=OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})
    filter_image: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    filter_folder: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    filter_glob: StringProperty(default=IMAGE_FILTER, options={"HIDDEN"})
    image_name: StringProperty(name="Image", options={"SKIP_SAVE"},
                               description="Name of an image datablock to convert instead of a file")
    model: model_property()
    weights: StringProperty(name="Checkpoint", subtype="FILE_PATH",
                            description="The official weights file of the model (.pt / .pth); empty: the weights folder")
    depth_path: StringProperty(name="Depth Map", subtype="FILE_PATH", options={"SKIP_SAVE"},
                               description="Use this depth file instead of running the network")
    device: EnumProperty(name="Device", items=[("PREFERENCES", "Preferences", "The add-on preferences' device")]
                         + DEVICE_ITEMS, default="PREFERENCES")
    use_scene_settings: BoolProperty(options={"HIDDEN", "SKIP_SAVE"},
                                     description="Take source and settings from the sidebar (scene.depth_addon)")

    @classmethod
    def poll(cls, context):
        if context.mode != "OBJECT":
            cls.poll_message_set("Switch to Object Mode to import")
            return False
        if (running := running_job("depth")) is not None:
            cls.poll_message_set("The previous depth run is stopping: wait a moment" if running.cancelled()
                                 else "A depth run is in progress: wait for it or press Esc")
            return False
        return True  # what is missing depends on the inputs: a depth map file needs no torch (make_job)

    def job_key(self) -> str:
        return "depth"

    def invoke(self, context, event):
        if self.use_scene_settings or self.image_name or self.filepath:
            return self.execute(context)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def draw(self, context):
        draw_import_options(self.layout, self)

    # -- job -----------------------------------------------------------------------
    def make_job(self, context):
        if self.use_scene_settings:
            self._copy_scene_settings(context)
        # Read once: invalid settings (near >= far, ...) fail now, before the network runs.
        self._build_settings = settings_from_props(self)
        inputs = self._inputs()
        if not inputs:
            self.report({"ERROR"}, "No photo given: choose image files, or an image in the sidebar's Depth tab")
            return None
        if any(item.depth_path is None for item in inputs) and (missing := deps.missing_modules()):
            raise DepthAddonError(deps.missing_message(missing))
        from ..pipeline import Network

        network = Network(self.model, weights=bpy.path.abspath(self.weights) if self.weights else None,
                          weights_dir=preferences.custom_weights_dir(context), allow_download=bpy.app.online_access,
                          device=preferences.device(context) if self.device == "PREFERENCES" else self.device,
                          precision=preferences.precision(context))
        # What the depth files hold: as asked, else what each file records (decided in the worker).
        depth_kind = self.depth_kind if self.properties.is_property_set("depth_kind") else None
        return jobs.Job(DepthJob(inputs, network, depth_kind))

    def _copy_scene_settings(self, context) -> None:
        """Sidebar -> operator properties, once, so the redo panel shows (and keeps) them."""
        scene_props = context.scene.depth_addon
        self.use_scene_settings = False
        if scene_props.source == "FILE":
            self.filepath = scene_props.filepath
        elif (image := scene_props.resolve_image(context)) is not None:
            self.image_name = image.name
        self.model = scene_props.model
        self.weights = scene_props.weights
        self.depth_path = scene_props.depth_path
        settings_to_props(settings_from_props(scene_props), self)

    def _inputs(self) -> list[DepthInput]:
        depth_path = bpy.path.abspath(self.depth_path) if self.depth_path else None
        if self.image_name:
            from ..blender.datablocks import image_rgb

            image = bpy.data.images.get(self.image_name)
            if image is None:
                raise DepthAddonError(f"there is no image named {self.image_name!r}; open or pick another image")
            # Pixels are copied here, on the main thread: the worker never touches bpy data.
            inputs = [DepthInput.from_pixels(image.name, image_rgb(image), depth_path)]
            if depth_path and _read_with_blender():
                _read_pictures_with_blender(inputs)
            return inputs
        paths = [os.path.join(self.directory, item.name) for item in self.files if item.name]
        if not paths and self.filepath:
            paths = [self.filepath]
        if depth_path and len(paths) > 1:
            raise DepthAddonError("one depth map was given for several photos: import them one at a time")
        inputs = [DepthInput.from_file(bpy.path.abspath(path), depth_path) for path in paths]
        if depth_path and _read_with_blender():
            _read_pictures_with_blender(inputs)
        return inputs

    # -- main thread, after the job ------------------------------------------------
    def finish(self, context, job) -> set[str]:
        if self.job_failed(job):
            return {"CANCELLED"}
        built, failures = [], []
        for result in job.result:
            if result.error is not None:
                failures.append((result.input.label, result.error))
                continue
            try:
                built.append(self._build(context, result))
            except Exception as exc:  # reported per photo (a bug: with its traceback), never raised mid-import
                failures.append((result.input.label, exc))
        if not built:
            for _label, exc in failures:
                report_exception(self, exc)
            return {"CANCELLED"}
        for label, exc in failures:  # the others were built: a warning each
            self.report({"WARNING"}, f"{label}: {exc}")
        from ..blender.build import select_only

        select_only(built, context.view_layer)
        names = ", ".join(obj.name for obj in built)
        source = "cached depth" if all(r.from_cache for r in job.result if r.error is None) else job.task.network.model
        self.report({"INFO"}, f"Created {names} ({source}, in {job.elapsed:.1f} s)")
        return {"FINISHED"}

    def _build(self, context, result: DepthResult) -> bpy.types.Object:
        from .. import api

        item, found = result.input, result.depth
        if item.image_name is not None:
            image = bpy.data.images.get(item.image_name)
            if image is None:
                raise DepthAddonError(f"image {item.image_name!r} was removed during the run; run again")
            photo = api.Photo.from_image(image, item.rgb)
        else:
            photo = api.Photo.from_file(item.path, item.rgb)
        return api.build(photo, found, self._build_settings, collection=context.collection, select=False).object


def is_depth_object(obj) -> bool:
    from ..blender.build import PROP_DEPTH

    return obj is not None and obj.get(PROP_DEPTH) is not None


class DEPTH_ADDON_OT_remesh(SettingsProperties, Operator):
    """Rebuild the active depth object's geometry from its stored depth with other settings (no network)"""

    bl_idname = "depth_addon.remesh"
    bl_label = "Re-mesh Depth Object"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        if context.mode != "OBJECT":
            cls.poll_message_set("Switch to Object Mode")
            return False
        if not is_depth_object(context.active_object):
            cls.poll_message_set("The active object was not made by Image to Depth Mesh")
            return False
        return True

    use_scene_settings: BoolProperty(options={"HIDDEN", "SKIP_SAVE"},
                                     description="Apply the sidebar's geometry settings instead of the stored ones")

    def invoke(self, context, event):
        from ..blender.build import stored_settings

        if not self.use_scene_settings:  # the redo panel starts from the settings the object has
            settings_to_props(stored_settings(context.active_object), self)
        return self.execute(context)

    def _copy_scene_settings(self, context) -> None:
        """The sidebar's geometry settings; what the depth is and the object's type stay."""
        from ..blender.build import stored_settings

        stored = stored_settings(context.active_object)
        sidebar = settings_from_props(context.scene.depth_addon)
        settings_to_props(sidebar.with_changes(output=stored.output, depth_kind=stored.depth_kind,
                                               invert_relative=stored.invert_relative), self)
        self.use_scene_settings = False

    def draw(self, context):
        draw_settings(self.layout.column(heading="Geometry"), self, main=True, skip=())
        draw_settings(self.layout.column(heading="More"), self, main=False, skip=())

    def overrides(self) -> dict:
        """Settings given to this call (all of them after invoke; only the named ones from scripts)."""
        optional = optional_fields()
        explicit = settings_from_props(self)
        changed = {}
        for name in BuildSettings.__dataclass_fields__:
            given = self.properties.is_property_set(name)
            if name in optional:
                given = given or self.properties.is_property_set(f"use_{name}")
            if given:
                changed[name] = getattr(explicit, name)
        return changed

    def execute(self, context):
        from .. import api

        obj = context.active_object
        try:
            if self.use_scene_settings:
                self._copy_scene_settings(context)
            api.remesh(obj, **self.overrides())
        except DepthAddonError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class DEPTH_ADDON_OT_download_weights(JobOperator, Operator):
    """Download a model's official weights into the weights folder"""

    bl_idname = "depth_addon.download_weights"
    bl_label = "Download Weights"
    bl_options = {"INTERNAL"}

    model: model_property()

    @classmethod
    def poll(cls, context):
        if not _poll_dependencies(cls):  # weights are no use without torch: install that first
            return False
        if not bpy.app.online_access:
            cls.poll_message_set(preferences.online_message())
            return False
        return True

    @classmethod
    def description(cls, context, properties):
        from ..midas.registry import get_spec

        spec = get_spec(properties.model)
        return f"Download {spec.filename} ({spec.summary}) from {spec.url}"

    def invoke(self, context, event):
        from ..midas.registry import get_spec, licence_notice

        notice = licence_notice(get_spec(self.model))
        if notice is None:
            return self.execute(context)
        # Told before anything is fetched: the download starts only on "Download".
        return context.window_manager.invoke_confirm(self, event, title="Non-commercial licence",
                                                     message=notice[0].upper() + notice[1:] + ".",
                                                     confirm_text="Download", icon="WARNING")

    def job_key(self) -> str:
        return f"download:{self.model}"

    def make_job(self, context):
        from functools import partial

        from ..pipeline import download_weights

        return jobs.Job(partial(download_weights, self.model, preferences.custom_weights_dir(context)),
                        title="Download")

    def finish(self, context, job) -> set[str]:
        if self.job_failed(job):
            return {"CANCELLED"}
        self.report({"INFO"}, f"Downloaded {job.result}")
        return {"FINISHED"}


class DEPTH_ADDON_OT_install_dependencies(JobOperator, Operator):
    """Install torch and timm with pip into a folder outside the extension (kept when it is reinstalled)"""

    bl_idname = "depth_addon.install_dependencies"
    bl_label = "Install torch + timm"
    bl_options = {"INTERNAL"}

    @classmethod
    def poll(cls, context):
        reason = deps.unsupported_reason(preferences.PLATFORM)
        if reason is not None:
            cls.poll_message_set(reason)
            return False
        if not bpy.app.online_access:
            cls.poll_message_set(preferences.online_message())
            return False
        if running_job("install") is not None:
            cls.poll_message_set("The installer is already running")
            return False
        return True

    @classmethod
    def description(cls, context, properties):
        build = preferences.chosen_build(context)
        if build is None:
            return cls.__doc__
        return (f"Install torch ({build.label}: {build.download}) from {build.index_name} and timm, OpenCV and "
                f"Pillow from PyPI into {preferences.site_packages_dir()}")

    def job_key(self) -> str:
        return "install"

    def make_job(self, context):
        build = preferences.chosen_build(context)
        if build is None:
            raise DepthAddonError("no torch build is chosen in the add-on's preferences")
        target = preferences.site_packages_dir()
        self.report({"INFO"}, f"Installing torch ({build.label}, {build.download}) into {target}")
        return deps.InstallJob(build, target, have_pip=deps.have_pip())

    def finish(self, context, job) -> set[str]:
        if job.error is not None and not job.was_cancelled:
            print("\n".join(job.lines[-40:]))  # pip's output, for the system console
        if isinstance(job.error, OSError) and not job.was_cancelled:
            self.report({"ERROR"}, f"Installing torch + timm failed: {job.error}. Restart Blender and try again")
            return {"CANCELLED"}
        if self.job_failed(job):
            return {"CANCELLED"}
        deps.add_site_packages(job.result)
        missing = deps.missing_modules(refresh=True)
        if missing:
            self.report({"ERROR"}, f"pip finished but {deps.package_names(missing)} still cannot be found; "
                                   "see the system console for pip's output")
            print(job.result)
            return {"CANCELLED"}
        self.report({"INFO"}, f"torch, timm, OpenCV and Pillow installed ({job.build.label}); Image to Depth Mesh is ready"
                              + (" after restarting Blender" if "torch" in sys.modules else ""))
        return {"FINISHED"}


class DEPTH_ADDON_OT_remove_dependencies(Operator):
    """Delete the torch + timm the installer put outside the extension (Blender's own Python is untouched)"""

    bl_idname = "depth_addon.remove_dependencies"
    bl_label = "Remove Installed Packages"
    bl_options = {"INTERNAL"}

    @classmethod
    def poll(cls, context):
        if running_job("install") is not None:
            cls.poll_message_set("The installer is running: cancel it first")
            return False
        if not preferences.site_packages_dir().is_dir():
            cls.poll_message_set("Nothing is installed")
            return False
        return True

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        import shutil

        folder = preferences.site_packages_dir()
        deps.remove_site_packages(folder)
        shutil.rmtree(folder, ignore_errors=True)
        deps.missing_modules(refresh=True)
        if folder.exists():  # Windows keeps files of loaded modules open
            self.report({"WARNING"}, f"Some files in {folder} are in use: restart Blender, then remove it again")
            return {"FINISHED"}
        self.report({"INFO"}, f"Removed {folder}" + (" (restart Blender to unload torch)"
                                                     if "torch" in sys.modules else ""))
        return {"FINISHED"}


class DEPTH_ADDON_OT_clear_weights(Operator):
    """Delete the downloaded model weights in the weights folder (they download again when needed)"""

    bl_idname = "depth_addon.clear_weights"
    bl_label = "Clear Weights Cache"
    bl_options = {"INTERNAL"}

    @classmethod
    def poll(cls, context):
        if any(key.startswith("download:") and not job.done for key, job in ACTIVE.items()):
            cls.poll_message_set("A download is running: wait for it or cancel it")
            return False
        if not preferences.weights_cache_files(preferences.weights_folder(context)):
            cls.poll_message_set("No weights are downloaded")
            return False
        return True

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        files = preferences.weights_cache_files(preferences.weights_folder(context))
        for path in files:
            path.unlink(missing_ok=True)
        self.report({"INFO"}, f"Deleted {len(files)} weights file{'s' if len(files) != 1 else ''}")
        return {"FINISHED"}


class DEPTH_ADDON_OT_cancel_job(Operator):
    """Stop a running depth run, download or installation"""

    bl_idname = "depth_addon.cancel_job"
    bl_label = "Cancel"
    bl_options = {"INTERNAL"}

    key: StringProperty(options={"HIDDEN"})

    def execute(self, context):
        job = ACTIVE.get(self.key)
        if job is None:
            return {"CANCELLED"}
        job.cancel()
        return {"FINISHED"}


classes = (
    DEPTH_ADDON_OT_image_to_object,
    DEPTH_ADDON_OT_remesh,
    DEPTH_ADDON_OT_download_weights,
    DEPTH_ADDON_OT_install_dependencies,
    DEPTH_ADDON_OT_remove_dependencies,
    DEPTH_ADDON_OT_clear_weights,
    DEPTH_ADDON_OT_cancel_job,
)
