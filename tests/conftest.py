"""Shared fixtures for the three test tiers (pure numpy, torch on CPU, real bpy).

Blender tests (``@pytest.mark.blender``) run in the real ``bpy`` module from the bpy
wheel. Before anything imports bpy we point BLENDER_USER_RESOURCES at a private temp
folder, so no test reads or writes a real user configuration; each Blender test then
starts from an empty factory scene.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import reference_checkpoints
from reference_checkpoints import DAV2_REFERENCE, MIDAS_REFERENCE

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT / "samples"

_SESSION_FOLDERS: list[str] = []  # removed when the test session ends (pytest_unconfigure)


def _session_folder(prefix: str) -> str:
    folder = tempfile.mkdtemp(prefix=prefix)
    _SESSION_FOLDERS.append(folder)
    return folder


# Must happen at import time: bpy reads it once, when first imported.
_USER_RESOURCES = _session_folder("depth_addon_blender_user_")
os.environ["BLENDER_USER_RESOURCES"] = _USER_RESOURCES
# Never let a test reach a real weights cache or a real host by accident: downloads go to a
# closed loopback port unless a test serves the weights itself (127.0.0.1 http.server).
if "DEPTH_ADDON_WEIGHTS_DIR" not in os.environ:
    os.environ["DEPTH_ADDON_WEIGHTS_DIR"] = _session_folder("depth_addon_weights_")
# The installer's dependencies folder (normally ~/.local/share/depth_addon/py311): never the real one.
if "DEPTH_ADDON_DEPS_DIR" not in os.environ:
    os.environ["DEPTH_ADDON_DEPS_DIR"] = _session_folder("depth_addon_deps_")
os.environ.setdefault("DEPTH_ADDON_WEIGHTS_URL_BASE", "http://127.0.0.1:9/no-network-in-tests")


def run_python(*args, code: str | None = None, env: dict | None = None, cwd: Path = REPO_ROOT,
               timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    """This Python in a fresh process: ``python -c code *args`` (or ``python *args``), text output
    captured. ``env`` entries are added to this process's environment (which already points the
    weights, dependencies and Blender user folders at temp folders). ``check``: the test fails
    with the process's stderr unless it exits 0."""
    command = [sys.executable, *(("-c", code) if code is not None else ()), *map(str, args)]
    result = subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                            timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def run_cli(*args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m depth_addon *args`` from the repository root (this checkout's package)."""
    return run_python("-m", "depth_addon", *args, env={"PYTHONPATH": str(REPO_ROOT), **(env or {})},
                      timeout=timeout)


@pytest.fixture(autouse=True)
def _empty_blender_scene(request):
    """Give every ``blender``-marked test a fresh, empty factory scene."""
    if request.node.get_closest_marker("blender") is None:
        yield
        return
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield


@pytest.fixture(scope="session")
def blender_user_resources() -> Path:
    return Path(_USER_RESOURCES)


@pytest.fixture(scope="session")
def sample_photo() -> Path:
    return SAMPLES / "chelsea.jpg"


@pytest.fixture(scope="session")
def midas_reference() -> Path:
    if not MIDAS_REFERENCE.is_dir():
        pytest.fail(f"{MIDAS_REFERENCE} is missing: CI and developers keep ../shared beside the checkout")
    return MIDAS_REFERENCE


@pytest.fixture(scope="session")
def dav2_reference() -> Path:
    if not DAV2_REFERENCE.is_dir():
        pytest.fail(f"{DAV2_REFERENCE} is missing: CI and developers keep ../shared beside the checkout")
    return DAV2_REFERENCE


def reference_npz(model_type: str) -> Path:
    """The official reference data of ``model_type`` (MiDaS or Depth Anything V2)."""
    try:
        return reference_checkpoints.reference_npz(model_type)
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


def reference_checkpoint(model_type: str, wrap: bool = False) -> Path:
    """The deterministic official-format checkpoint for ``model_type``; see ``reference_checkpoints``."""
    reference_npz(model_type)
    return reference_checkpoints.reference_checkpoint(model_type, wrap)


def reference_data(model_type: str) -> dict:
    """The official outputs for ``model_type``: image, net_input, net_output, pred, transform settings."""
    import numpy as np

    with np.load(reference_npz(model_type)) as ref:
        return {k: ref[k] for k in ref.files if not k.startswith("kept_")}


_exit_status = 0


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


def pytest_unconfigure(config):
    """Leave without Blender's exit-time leak report when bpy was loaded.

    The UI draw tests need real UILayouts, which background mode only offers as popup menus
    that can be begun but never ended (ending one without a window crashes). Blender's
    allocator then reports those blocks at exit, *after* pytest's summary line, which must stay
    the last line of the run. Everything pytest writes is done by now; keep its exit status.
    The session's temp folders go first (runs must not pile them up).
    """
    for folder in _SESSION_FOLDERS:
        shutil.rmtree(folder, ignore_errors=True)
    if "bpy" in sys.modules and sys.modules["bpy"] is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)


# -----------------------------------------------------------------------------
# What this Blender does with point output (tests check each version's own behaviour)


def point_clouds_here() -> bool:
    """Whether this Blender makes PointCloud objects (4.5+); 4.2-4.4 make a points mesh with a
    Mesh-to-Points geometry-nodes modifier instead (``depth_addon.blender.points``)."""
    from depth_addon.blender.mesh import can_convert_to_point_cloud

    return can_convert_to_point_cloud()  # what Blender can do, whatever a test forces on the add-on


def point_object_type() -> str:
    return "POINTCLOUD" if point_clouds_here() else "MESH"


def point_count(obj) -> int:
    """Points of depth_addon point output, whichever kind this Blender makes."""
    return len(obj.data.points) if obj.type == "POINTCLOUD" else len(obj.data.vertices)


def require_point_clouds() -> None:
    import bpy

    if not point_clouds_here():
        pytest.skip(f"Blender {bpy.app.version_string} has no PointCloud objects: point output is the "
                    "points mesh, which the points_fallback tests check")
