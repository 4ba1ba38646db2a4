"""Shared fixtures for the three test tiers (pure numpy, torch on CPU, real bpy).

Blender tests (``@pytest.mark.blender``) run in the real ``bpy`` module from the bpy
wheel. Before anything imports bpy we point BLENDER_USER_RESOURCES at a private temp
folder, so no test reads or writes a real user configuration; each Blender test then
starts from an empty factory scene.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
MIDAS_REFERENCE = SHARED / "midas_reference"
SAMPLES = REPO_ROOT / "samples"

# Must happen at import time: bpy reads it once, when first imported.
_USER_RESOURCES = tempfile.mkdtemp(prefix="depth_addon_blender_user_")
os.environ["BLENDER_USER_RESOURCES"] = _USER_RESOURCES
# Never let a test reach a real weights cache or the network by accident.
os.environ.setdefault("DEPTH_ADDON_WEIGHTS_DIR", tempfile.mkdtemp(prefix="depth_addon_weights_"))


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
