"""The Blender UI layer: operators, panels, menus and registration in the real bpy module,
plus the bpy-free job pieces (threads, cancel, subprocesses, the depth job's cache).

The modal (threaded) path needs a window and an event loop, which the bpy module does not
run; its cancel path is driven by calling ``modal.JobOperator``'s real ``modal`` method with
a running depth job and the real context. Panels are drawn into a real ``UILayout``
taken from a popup menu that is begun but never shown (``popmenu_begin__internal``).
"""

from __future__ import annotations

import shutil
import sys
import threading
import types

import numpy as np
import pytest

from conftest import SAMPLES, point_count, point_object_type, reference_checkpoint, run_python

MODEL = "midas_v21_small_256"
PHOTO = SAMPLES / "chelsea.jpg"
DATA_COLLECTIONS = ("objects", "meshes", "pointclouds", "cameras", "images", "materials")


# -----------------------------------------------------------------------------
# jobs (no bpy)


@pytest.mark.pure
def test_depth_cache_keeps_the_most_recent_entries():
    from depth_addon.depth_job import DepthCache

    cache = DepthCache(size=2)
    first, second, third = (np.full((2, 2), value, np.float32) for value in (1, 2, 3))
    cache.put(("a",), first)
    cache.put(("b",), second)
    assert cache.get(("a",)) is first  # "a" is now the most recent
    cache.put(("c",), third)
    assert cache.get(("b",)) is None
    assert cache.get(("a",)) is first and cache.get(("c",)) is third
    assert cache.hits == 3 and len(cache) == 2


@pytest.mark.pure
def test_command_job_collects_output_and_reports_failures():
    from depth_addon.ui.deps import CommandJob

    ok = CommandJob([[sys.executable, "-c", "print('first'); print('second')"]]).run_sync()
    assert ok.error is None and ok.result.splitlines() == ["first", "second"]
    assert ok.progress[0] == 1.0

    failing = CommandJob([[sys.executable, "-c", "import sys; print('pip says no'); sys.exit(3)"],
                          [sys.executable, "-c", "print('never runs')"]]).run_sync()
    assert isinstance(failing.error, RuntimeError)
    assert "status 3" in str(failing.error) and "pip says no" in str(failing.error)
    assert "never runs" not in failing.lines


@pytest.mark.pure
def test_command_job_cancel_terminates_the_process():
    from depth_addon.errors import CancelledError
    from depth_addon.ui.deps import CommandJob

    job = CommandJob([[sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"]]).start()
    for _ in range(200):
        if job.lines:
            break
        job.wait(0.05)
    job.cancel()
    assert job.wait(10), "the subprocess was not terminated"
    assert isinstance(job.error, CancelledError) and job.was_cancelled


@pytest.mark.pure
def test_cancel_wins_over_a_result_finished_after_it():
    """Esc while the worker is on its last step: the job still ends cancelled, its result dropped."""
    from depth_addon.errors import CancelledError
    from depth_addon.ui.jobs import Job

    class LastStep(Job):
        def work(self):
            assert self._cancel.wait(30)  # Esc arrives while the last step still runs
            return "a result nobody may see"

    job = LastStep().start()
    job.cancel()
    assert job.wait(30)
    assert isinstance(job.error, CancelledError) and job.result is None and job.was_cancelled


@pytest.mark.pure
def test_site_packages_are_appended_and_removed(tmp_path):
    from depth_addon.ui import deps

    before = list(sys.path)
    assert deps.add_site_packages(tmp_path) is True
    assert sys.path[-1] == str(tmp_path) and deps.add_site_packages(tmp_path) is False
    deps.remove_site_packages(tmp_path)
    assert sys.path == before
    assert deps.add_site_packages(tmp_path / "missing") is False


# -----------------------------------------------------------------------------
# Blender: helpers and fixtures


@pytest.fixture
def addon():
    """The add-on registered from the source tree (as ``depth_addon``), unregistered afterwards."""
    import bpy

    import depth_addon

    depth_addon.register()
    try:
        yield bpy
    finally:
        depth_addon.unregister()


@pytest.fixture(scope="module")
def checkpoint():
    return str(reference_checkpoint(MODEL))


def _counts(bpy) -> dict[str, int]:
    return {name: len(getattr(bpy.data, name)) for name in DATA_COLLECTIONS}


def _positions(obj) -> np.ndarray:
    co = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
    obj.data.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


def _layout(bpy):
    """A real UILayout in background mode (a popup menu that is begun but never shown)."""
    return bpy.context.window_manager.popmenu_begin__internal("depth_addon test", icon="NONE").layout


def _assert_drawn_cleanly(capfd):
    out, err = capfd.readouterr()
    for problem in ("property not found", "unknown operator", "Traceback"):
        assert problem not in out + err, out + err


def _import(bpy, checkpoint, **kwargs):
    kwargs.setdefault("filepath", str(PHOTO))
    kwargs.setdefault("resolution", 96)
    kwargs.setdefault("tear", False)  # the reference checkpoint's depth is noise: tearing would drop most faces
    return bpy.ops.depth_addon.image_to_object(model=MODEL, weights=checkpoint, **kwargs)


def _imported_object(bpy, checkpoint, **kwargs):
    """The object one successful import made (the active one afterwards)."""
    assert _import(bpy, checkpoint, **kwargs) == {"FINISHED"}
    return bpy.context.view_layer.objects.active


# -----------------------------------------------------------------------------
# Blender: registration


@pytest.mark.blender
def test_register_unregister_leaves_nothing_behind():
    import bpy

    import depth_addon
    from depth_addon.ui import _classes, panels

    classes = _classes()
    path_before = list(sys.path)

    def menu_funcs():
        return {menu: list(getattr(bpy.types, menu)._dyn_ui_initialize()) for menu, _ in panels.MENUS}

    menus_before = menu_funcs()
    for _ in range(2):
        depth_addon.register()
        assert all(cls.is_registered for cls in classes)
        assert hasattr(bpy.types, "DEPTH_ADDON_OT_image_to_object")
        assert hasattr(bpy.types.Scene, "depth_addon")
        assert bpy.ops.depth_addon.image_to_object.poll()  # registered, and usable: torch is here, no run going
        assert all(func in menu_funcs()[menu] for menu, func in panels.MENUS)
        depth_addon.unregister()
        assert not any(cls.is_registered for cls in classes)
        assert not hasattr(bpy.types, "DEPTH_ADDON_OT_image_to_object")
        assert not hasattr(bpy.types.Scene, "depth_addon")
        assert menu_funcs() == menus_before
        assert sys.path == path_before


@pytest.mark.blender
def test_register_imports_neither_torch_nor_timm(tmp_path):
    code = (
        "import sys, bpy, depth_addon; depth_addon.register(); "
        "heavy = sorted(m for m in ('torch', 'timm') if m in sys.modules); "
        "assert not heavy, f'imported at register: {heavy}'; "
        "depth_addon.unregister(); "
        # Blender 4.2's own teardown may crash at exit (SIGSEGV): the checks are done, end here.
        "import os; sys.stdout.flush(); os._exit(0)"
    )
    env = {"BLENDER_USER_RESOURCES": str(tmp_path)}
    result = run_python(code=code, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


# -----------------------------------------------------------------------------
# Blender: the import operator


@pytest.mark.blender
@pytest.mark.torch
def test_operator_imports_a_photo_in_background(addon, checkpoint, capfd):
    bpy = addon
    assert bpy.app.background
    assert _import(bpy, checkpoint) == {"FINISHED"}

    obj = bpy.context.view_layer.objects.active
    assert obj.type == "MESH" and obj.name == "chelsea" and obj.select_get()
    assert len(obj.data.vertices) > 5000 and len(obj.data.polygons) > 5000  # a 96 x 64 grid
    assert obj.data.uv_layers.active is not None
    uv = np.empty(len(obj.data.loops) * 2, dtype=np.float32)
    obj.data.uv_layers.active.data.foreach_get("uv", uv)
    assert 0.0 <= uv.min() and uv.max() <= 1.0 and np.ptp(uv) > 0.9
    material = obj.active_material
    textures = [n.image for n in material.node_tree.nodes if n.type == "TEX_IMAGE"]
    assert [image.filepath for image in textures] and textures[0].size[:] == (451, 300)
    camera = bpy.context.scene.camera
    assert camera is not None and camera.type == "CAMERA" and camera.name in bpy.context.scene.objects
    # The sidebar's panel for the active object now applies.
    from depth_addon.ui.panels import VIEW3D_PT_depth_addon_object, draw_object_panel

    assert VIEW3D_PT_depth_addon_object.poll(bpy.context)
    draw_object_panel(_layout(bpy), bpy.context)
    _assert_drawn_cleanly(capfd)


@pytest.mark.blender
@pytest.mark.torch
def test_operator_and_python_api_give_identical_geometry(addon, checkpoint):
    bpy = addon
    from depth_addon import api

    from_operator = _imported_object(bpy, checkpoint, resolution=80, tear=True, tear_threshold=0.07)
    result = api.image_to_object(str(PHOTO), model=MODEL, weights=checkpoint, device="auto",
                                 resolution=80, tear=True, tear_threshold=0.07)
    assert result.object != from_operator
    np.testing.assert_array_equal(_positions(from_operator), _positions(result.object))


@pytest.mark.blender
@pytest.mark.torch
def test_rerun_with_other_settings_reuses_the_depth(addon, checkpoint):
    """What the redo panel does: the same photo and model again, other geometry -> no network."""
    bpy = addon
    from depth_addon.depth_job import DEPTH_CACHE

    coarse = len(_imported_object(bpy, checkpoint, resolution=64).data.vertices)
    hits = DEPTH_CACHE.hits
    _import(bpy, checkpoint, resolution=128)
    assert DEPTH_CACHE.hits == hits + 1
    assert len(bpy.context.view_layer.objects.active.data.vertices) > 2 * coarse


@pytest.mark.blender
@pytest.mark.torch
def test_sidebar_uses_the_image_shown_in_an_image_editor(addon, checkpoint, capfd):
    bpy = addon
    image = bpy.data.images.load(str(PHOTO))
    area = bpy.context.screen.areas[0]
    area.type = "IMAGE_EDITOR"
    area.spaces.active.image = image

    props = bpy.context.scene.depth_addon
    props.source, props.model, props.weights = "IMAGE", MODEL, checkpoint
    props.resolution, props.add_camera = 48, False
    assert props.image is None and props.resolve_image(bpy.context) == image

    from depth_addon.ui.panels import draw_depth_panel

    draw_depth_panel(_layout(bpy), bpy.context)  # "From the Image Editor: chelsea.jpg"
    _assert_drawn_cleanly(capfd)

    before = _counts(bpy)
    assert bpy.ops.depth_addon.image_to_object(use_scene_settings=True) == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    from depth_addon.blender.build import PROP_PHOTO, stored_settings

    assert obj[PROP_PHOTO] == image  # the datablock itself, not a second copy of the file
    assert stored_settings(obj).resolution == 48
    after = _counts(bpy)
    from depth_addon.blender.build import PROP_FILL_IMAGE

    # the stored depth map, and the extended photo where the mesh tears
    assert after["images"] == before["images"] + 1 + (PROP_FILL_IMAGE in obj)
    assert after["cameras"] == before["cameras"]  # add_camera was off in the sidebar


@pytest.mark.blender
@pytest.mark.torch
def test_several_files_make_one_object_each(addon, checkpoint, tmp_path):
    bpy = addon
    for name in ("left.jpg", "right.jpg"):
        shutil.copy(PHOTO, tmp_path / name)
    result = bpy.ops.depth_addon.image_to_object(
        directory=str(tmp_path), files=[{"name": "left.jpg"}, {"name": "right.jpg"}],
        model=MODEL, weights=checkpoint, resolution=32, add_camera=False,
    )
    assert result == {"FINISHED"}
    selected = sorted(obj.name for obj in bpy.context.selected_objects)
    assert selected == ["left", "right"]
    assert bpy.context.view_layer.objects.active.name == "right"


@pytest.mark.blender
@pytest.mark.torch
def test_points_output(addon, checkpoint):
    bpy = addon
    obj = _imported_object(bpy, checkpoint, output="points", resolution=40, point_size=0.02)
    assert obj.type == point_object_type() and point_count(obj) > 500


@pytest.mark.blender
def test_depth_map_file_skips_the_network(addon, tmp_path):
    bpy = addon
    from depth_addon.blender.build import stored_settings

    result = bpy.ops.depth_addon.image_to_object(
        filepath=str(PHOTO), depth_path=str(SAMPLES / "chelsea_depth.png"), weights=str(tmp_path / "absent.pt"),
        resolution=32, add_camera=False)
    assert result == {"FINISHED"}  # the absent checkpoint was never needed
    obj = bpy.context.view_layer.objects.active
    assert stored_settings(obj).depth_kind == "relative"  # guessed from the 8/16-bit picture
    bpy.ops.depth_addon.image_to_object(filepath=str(PHOTO), depth_path=str(SAMPLES / "chelsea_depth.png"),
                                        depth_kind="metric", resolution=32, add_camera=False)
    assert stored_settings(bpy.context.view_layer.objects.active).depth_kind == "metric"  # as asked


@pytest.mark.blender
@pytest.mark.torch  # the operator's poll wants torch + timm
def test_failures_leave_the_scene_unchanged(addon, checkpoint, tmp_path):
    bpy = addon
    before = _counts(bpy)
    with pytest.raises(RuntimeError, match="not found"):
        _import(bpy, checkpoint, filepath=str(tmp_path / "missing.jpg"))
    with pytest.raises(RuntimeError, match="weights file not found"):
        _import(bpy, str(tmp_path / "missing.pt"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(RuntimeError, match="broken.jpg"):
        _import(bpy, checkpoint, filepath=str(broken))
    with pytest.raises(RuntimeError, match="no image named"):
        bpy.ops.depth_addon.image_to_object(image_name="nothing", weights=checkpoint)
    with pytest.raises(RuntimeError, match="No photo given"):
        bpy.ops.depth_addon.image_to_object(weights=checkpoint)
    with pytest.raises(RuntimeError, match="near < far"):
        _import(bpy, checkpoint, near=5.0, far=2.0)
    with pytest.raises(RuntimeError, match="one depth map was given for several photos"):
        bpy.ops.depth_addon.image_to_object(directory=str(SAMPLES), files=[{"name": "a.jpg"}, {"name": "b.jpg"}],
                                            depth_path=str(SAMPLES / "chelsea_depth.png"))
    assert _counts(bpy) == before


@pytest.mark.blender
@pytest.mark.torch
def test_cancel_leaves_the_scene_unchanged(addon, checkpoint):
    """Esc during a threaded run: the operator ends at once, the job stops, nothing is built."""
    bpy = addon
    from depth_addon.depth_job import DepthInput, DepthJob
    from depth_addon.errors import CancelledError
    from depth_addon.pipeline import Network
    from depth_addon.ui import jobs, modal

    class ModalRun(modal.JobOperator):
        """The operator mix-in's real modal/cancel code, without a window's event loop."""

        def __init__(self, job):
            self._handle, self.reports = (modal.JobHandle("depth", job) if job else None), []

        def job_key(self):
            return "depth"

        def make_job(self, context):  # the job is started by the test itself
            raise AssertionError("not called")

        def report(self, kind, message):
            self.reports.append((kind, message))

        def finish(self, context, job):  # must never be reached when cancelled
            raise AssertionError("finished a cancelled run")

    def depth_job(*inputs, **network):
        return jobs.Job(DepthJob(list(inputs), Network(MODEL, **network), cache=None))

    before = _counts(bpy)
    started, escape_pressed = [], threading.Event()
    job = depth_job(DepthInput.from_file(PHOTO), weights=checkpoint)
    original_report = job.report

    def report_then_wait(fraction, message=None):
        """The worker's first progress report holds it until Esc was handled: no race with a fast run."""
        original_report(fraction, message)
        if not started:
            started.append(message)
            escape_pressed.wait(60)

    job.report = report_then_wait
    modal.ACTIVE["depth"] = job.start()
    run = ModalRun(job)
    timer = types.SimpleNamespace(type="TIMER", value="NOTHING")
    for _ in range(200):
        if started:
            break
        assert run.modal(bpy.context, timer) == {"RUNNING_MODAL", "PASS_THROUGH"}
        job.wait(0.02)
    assert started, "the job never reported progress"
    assert not bpy.ops.depth_addon.image_to_object.poll()  # one depth run at a time

    escape = types.SimpleNamespace(type="ESC", value="PRESS")
    assert run.modal(bpy.context, escape) == {"CANCELLED"}
    # The worker is still busy: its entry stays and blocks a second run until it ends.
    assert not job.done and modal.ACTIVE.get("depth") is job and not bpy.ops.depth_addon.image_to_object.poll()
    assert run.reports and run.reports[-1][0] == {"WARNING"} and "cancelled" in run.reports[-1][1]
    escape_pressed.set()
    assert job.wait(60), "the worker did not stop after cancel"
    assert isinstance(job.error, CancelledError) and job.result is None
    assert _counts(bpy) == before
    assert bpy.ops.depth_addon.image_to_object.poll()

    # A run that completes: the timer tick after it ends hands the job to finish() on this thread.
    finished = []
    run.finish = lambda context, done_job: (finished.append(done_job), {"FINISHED"})[1]
    quick = depth_job(DepthInput.from_file(PHOTO, str(SAMPLES / "chelsea_depth.png")))
    modal.ACTIVE["depth"] = quick.start()
    run._handle = modal.JobHandle("depth", quick)
    assert quick.wait(60)
    assert run.modal(bpy.context, timer) == {"FINISHED"} and finished == [quick]
    found = quick.result[0].depth
    assert "depth" not in modal.ACTIVE and found.values.shape == (300, 451)
    assert (found.kind, found.source) == ("relative", "file")  # decided in the worker, from the picture
    # Blender calls cancel() when the file browser is closed before anything started.
    ModalRun(None).cancel(bpy.context)

    # Synchronously: a job cancelled before it runs never touches the network.
    early = depth_job(DepthInput.from_file(PHOTO), weights=checkpoint)
    early.cancel()
    early.run_sync()
    assert early.was_cancelled and early.task.networks_run == 0


@pytest.mark.blender
def test_job_operators_name_what_they_lack_when_defined():
    """The mix-in checks its subclasses at class definition, not when a user first clicks."""
    from depth_addon.ui.modal import JobOperator

    with pytest.raises(TypeError, match=r"^Half must define make_job, finish to run a job"):
        class Half(JobOperator):
            def job_key(self):
                return "x"


# -----------------------------------------------------------------------------
# Blender: re-mesh, polls, drawing


@pytest.mark.blender
@pytest.mark.torch
def test_remesh_operator_changes_only_the_given_settings(addon, checkpoint):
    bpy = addon
    from depth_addon.blender.build import stored_settings

    obj = _imported_object(bpy, checkpoint, resolution=64, tear=False, near=2.0)
    count = len(obj.data.vertices)
    assert bpy.ops.depth_addon.remesh(resolution=32) == {"FINISHED"}
    settings = stored_settings(obj)
    assert settings.resolution == 32 and settings.tear is False and settings.near == 2.0
    assert len(obj.data.vertices) < count

    # "Apply Sidebar Settings": the sidebar's geometry, but the object's own output and depth kind.
    sidebar = bpy.context.scene.depth_addon
    sidebar.resolution, sidebar.tear, sidebar.output, sidebar.depth_kind = 24, True, "points", "metric"
    assert bpy.ops.depth_addon.remesh(use_scene_settings=True) == {"FINISHED"}
    settings = stored_settings(obj)
    assert (settings.resolution, settings.tear, settings.near) == (24, True, 1.0)
    assert (settings.output, settings.depth_kind) == ("mesh", "inverse") and obj.type == "MESH"

    bpy.context.view_layer.objects.active = bpy.context.scene.camera
    with pytest.raises(RuntimeError, match="not made by Image to Depth Mesh"):
        bpy.ops.depth_addon.remesh()


@pytest.mark.blender
def test_poll_messages_explain_what_to_do(addon, monkeypatch):
    bpy = addon
    from depth_addon.ui import deps

    monkeypatch.setattr(deps, "_missing", ("torch", "timm"))
    with pytest.raises(RuntimeError, match="torch and timm are not installed.*Preferences"):
        bpy.ops.depth_addon.image_to_object(filepath=str(PHOTO))
    with pytest.raises(RuntimeError, match="not installed"):
        bpy.ops.depth_addon.download_weights(model=MODEL)
    monkeypatch.setattr(deps, "_missing", ())
    assert not bpy.app.online_access  # the bpy module starts offline, like a fresh Blender
    with pytest.raises(RuntimeError, match="Online access"):
        bpy.ops.depth_addon.download_weights(model=MODEL)
    with pytest.raises(RuntimeError, match="Online access"):
        bpy.ops.depth_addon.install_dependencies()


@pytest.fixture
def local_weights_server(tmp_path, monkeypatch):
    """A 127.0.0.1 HTTP server holding the reference checkpoint; the weights manager points at it.

    A real checkpoint of the model type: downloads are proven to be one before they are kept.
    """
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    (served / f"{MODEL}.pt").symlink_to(reference_checkpoint(MODEL))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("DEPTH_ADDON_WEIGHTS_URL_BASE", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("DEPTH_ADDON_WEIGHTS_DIR", str(tmp_path / "weights"))
    try:
        yield served / f"{MODEL}.pt"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.blender
@pytest.mark.torch  # the download buttons want torch + timm
def test_download_operator_fetches_weights_when_online(addon, local_weights_server):
    bpy = addon
    from depth_addon.midas.weights import cached_weights

    system = bpy.context.preferences.system
    system.use_online_access = True
    try:
        assert cached_weights(MODEL) is None
        assert bpy.ops.depth_addon.download_weights(model=MODEL) == {"FINISHED"}
    finally:
        system.use_online_access = False
    path = cached_weights(MODEL)
    assert path is not None and path.read_bytes() == local_weights_server.read_bytes()


@pytest.mark.blender
@pytest.mark.torch  # the operator's run wants torch + timm
def test_the_preferences_weights_folder_is_passed_to_the_run(tmp_path):
    """No global default: the preferences' Weights Folder reaches the resolver as an argument."""
    import re

    import addon_utils
    import bpy

    from depth_addon.midas.registry import get_spec
    from depth_addon.ui import preferences

    mine = tmp_path / "mine"
    assert addon_utils.enable("depth_addon", default_set=True) is not None  # real preferences
    try:
        preferences.get_preferences().weights_dir = str(mine)
        assert preferences.weights_folder() == mine
        assert not bpy.app.online_access
        with pytest.raises(RuntimeError, match=re.escape(f"put {get_spec(MODEL).filename} in {mine}")):
            bpy.ops.depth_addon.image_to_object(filepath=str(PHOTO), model=MODEL, resolution=16)
    finally:
        preferences.get_preferences().weights_dir = ""
        addon_utils.disable("depth_addon", default_set=True)


@pytest.mark.blender
def test_panels_menus_and_options_draw(addon, capfd, monkeypatch):
    bpy = addon
    from depth_addon.depth_job import DepthJob
    from depth_addon.pipeline import Network
    from depth_addon.ui import deps, jobs, modal, operators, panels, properties

    context = bpy.context
    props = context.scene.depth_addon
    menu = types.SimpleNamespace(layout=None)
    for source in ("IMAGE", "FILE"):
        props.source = source
        for missing in ((), ("torch",)):
            monkeypatch.setattr(deps, "_missing", missing)
            panels.draw_depth_panel(_layout(bpy), context)
    props.weights, props.depth_path, props.depth_kind = "/some/model.pt", "/some/depth.exr", "relative"
    panels.draw_depth_panel(_layout(bpy), context)
    properties.draw_settings(_layout(bpy), props, main=False)
    running = jobs.Job(DepthJob([], Network(MODEL)))
    running.report(0.4, "Running MiDaS")
    monkeypatch.setitem(modal.ACTIVE, "depth", running)
    panels.draw_depth_panel(_layout(bpy), context)  # progress + cancel button
    for func in (panels.menu_import, panels.menu_image_editor):
        menu.layout = _layout(bpy)
        func(menu, context)
    operators.draw_import_options(
        _layout(bpy), context.window_manager.operator_properties_last("depth_addon.image_to_object"))
    _assert_drawn_cleanly(capfd)

    assert not panels.VIEW3D_PT_depth_addon_object.poll(context)
    assert panels.VIEW3D_PT_depth_addon.bl_category == "Depth"


@pytest.mark.blender
def test_settings_properties_mirror_build_settings(addon):
    bpy = addon
    from dataclasses import fields

    from depth_addon.settings import BuildSettings
    from depth_addon.ui.properties import settings_from_props, settings_to_props

    props = bpy.context.scene.depth_addon
    assert settings_from_props(props) == BuildSettings()  # same defaults
    rna = props.bl_rna.properties
    for field in fields(BuildSettings):
        assert field.name in rna, f"BuildSettings.{field.name} has no property"
    custom = BuildSettings(output="points", fov_deg=40.0, stride=3, tear=False, depth_kind="metric", near=0.5)
    settings_to_props(custom, props)
    assert settings_from_props(props) == custom
    assert [item.identifier for item in rna["output"].enum_items] == ["mesh", "points"]


@pytest.mark.blender
@pytest.mark.torch
def test_metric_model_through_the_operator_builds_metric_geometry(addon, capfd):
    """Depth Anything V2 metric from the operator: the stored settings say metric (metres), and the
    sidebar draws the model's facts (kind, licence) and the family headings without errors."""
    bpy = addon
    from depth_addon.blender.build import stored_settings
    from depth_addon.ui.panels import draw_depth_panel
    from depth_addon.ui.properties import MODEL_ITEMS

    model = "depth_anything_v2_metric_hypersim_vits"
    weights = str(reference_checkpoint(model))
    assert bpy.ops.depth_addon.image_to_object(filepath=str(PHOTO), model=model, weights=weights, stride=8,
                                               tear=False, add_camera=False) == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    assert stored_settings(obj).depth_kind == "metric"
    depth = np.empty(len(obj.data.vertices), dtype=np.float32)
    obj.data.attributes["depth"].data.foreach_get("value", depth)  # each vertex's camera-axis distance
    assert 0.0 < depth.min() and depth.max() <= 20.0  # metres, within the indoor model's range
    headings = [item[1] for item in MODEL_ITEMS if item[0] == ""]
    assert headings == ["MiDaS", "Depth Anything V2"]
    props = bpy.context.scene.depth_addon
    props.model = "depth_anything_v2_vitl"
    draw_depth_panel(_layout(bpy), bpy.context)
    _assert_drawn_cleanly(capfd)
