"""Layering and add-on registration."""

from __future__ import annotations

import pytest

from conftest import run_python

# Modules that must import in plain Python with no Blender at all.
CORE_MODULES = [
    "depth_addon",
    "depth_addon.errors",
    "depth_addon.settings",
    "depth_addon.midas",
    "depth_addon.midas.registry",
    "depth_addon.midas.weights",
    "depth_addon.imageio",
    "depth_addon.pipeline",
    "depth_addon.depth_job",
    "depth_addon.ui.jobs",
    "depth_addon.ui.deps",
    "depth_addon.geometry",
    "depth_addon.cli",
    "depth_addon.cli.depth_cmd",
    "depth_addon.cli.mesh_cmd",
]


@pytest.mark.pure
@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_imports_without_bpy(module):
    # sys.modules["bpy"] = None makes any `import bpy` raise ImportError.
    code = (
        "import sys, importlib; sys.modules['bpy'] = None; "
        f"importlib.import_module({module!r}); "
        "heavy = sorted(m for m in ('torch', 'timm', 'bpy', 'cv2') if sys.modules.get(m) is not None); "
        "assert not heavy, f'imported at module level: {heavy}'"
    )
    run_python(code=code, check=True)
