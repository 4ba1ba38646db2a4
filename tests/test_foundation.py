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


@pytest.mark.blender
def test_register_unregister_twice():
    """Each register() adds the operators, panels and scene settings; each unregister() takes them all away."""
    import bpy

    import depth_addon

    def registered() -> dict[str, bool]:
        return {
            "operator": hasattr(bpy.types, "DEPTH_ADDON_OT_image_to_object"),
            "operator call": "image_to_object" in dir(bpy.ops.depth_addon),
            "panel": hasattr(bpy.types, "VIEW3D_PT_depth_addon"),
            "scene settings": hasattr(bpy.types.Scene, "depth_addon"),
        }

    assert not any(registered().values()), registered()
    for _ in range(2):
        depth_addon.register()
        assert all(registered().values()), registered()
        assert bpy.ops.depth_addon.image_to_object.poll() in (True, False)  # callable, not a stale handle
        depth_addon.unregister()
        assert not any(registered().values()), registered()
