"""The packaged extension: build the zip, validate it with Blender's own tool, install it into
an isolated Blender user folder and use it there like a user's ``blender -b`` script would.

Installing happens in a subprocess with its own ``BLENDER_USER_RESOURCES``: the installed
package is ``bl_ext.user_default.depth_addon`` and must not meet the ``depth_addon`` that
other tests import from the source tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile

import pytest

from conftest import REPO_ROOT, SAMPLES, reference_checkpoint, run_python

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import build_extension

MODEL = "midas_v21_small_256"


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory):
    return build_extension.build(tmp_path_factory.mktemp("dist"))


@pytest.mark.pure
def test_manifest_declares_what_blender_needs():
    manifest = tomllib.loads((REPO_ROOT / "blender_manifest.toml").read_text())
    assert manifest["schema_version"] == "1.0.0" and manifest["type"] == "add-on"
    assert manifest["id"] == "depth_addon" and manifest["blender_version_min"] == "4.2.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert set(manifest["permissions"]) == {"network", "files"}
    assert manifest["version"] == build_extension.package_version()


@pytest.mark.blender
def test_blender_ext_is_found_without_importing_bpy():
    code = ("import sys; sys.path.insert(0, 'scripts'); import build_extension; "
            "path = build_extension.find_blender_ext(); assert path.name == 'blender_ext.py', path; "
            "assert 'bpy' not in sys.modules")
    result = run_python(code=code)
    assert result.returncode == 0, result.stderr


@pytest.mark.blender
def test_build_produces_a_valid_package(extension_zip):
    assert extension_zip.name == "depth_addon-0.1.0.zip"
    names = zipfile.ZipFile(extension_zip).namelist()
    for required in ("blender_manifest.toml", "__init__.py", "ui/operators.py", "ui/panels.py",
                     "midas/registry.py", "api.py"):
        assert required in names, f"{required} missing from the zip"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    build_extension.validate(extension_zip)  # raises BuildError when Blender rejects it


@pytest.mark.blender
def test_validation_rejects_a_broken_manifest(tmp_path):
    staged = build_extension.stage(tmp_path)
    manifest = staged / "blender_manifest.toml"
    manifest.write_text(manifest.read_text().replace('blender_version_min = "4.2.0"', ""))
    with pytest.raises(build_extension.BuildError, match="blender_version_min"):
        build_extension.validate(staged)


INSTALLED_SCRIPT = r"""
import json, sys
import bpy

report = {}
result = bpy.ops.extensions.package_install_files(
    filepath=sys.argv[1], repo="user_default", enable_on_install=True)
report["install"] = sorted(result)
package = "bl_ext.user_default.depth_addon"
report["enabled"] = package in bpy.context.preferences.addons
HEAVY = ("torch", "timm", "torchvision", "depth_addon_private_timm")  # the last: timm as the add-on imports it
report["heavy_after_enable"] = sorted(m for m in HEAVY if m in sys.modules)
addon = sys.modules[package]
from importlib import import_module
weights = import_module(package + ".midas.weights")
prefs_module = import_module(package + ".ui.preferences")
prefs = bpy.context.preferences.addons[package].preferences
report["prefs_idname"] = type(prefs).bl_idname
report["weights_dir"] = str(weights.weights_dir())
report["extension_dir"] = bpy.utils.extension_path_user(package)
report["deps_dir"] = str(import_module(package + ".ui.deps").dependencies_dir())
popup = bpy.context.window_manager.popmenu_begin__internal("test", icon="NONE")
prefs_module.draw_preferences(prefs, popup.layout, bpy.context)

bpy.ops.wm.read_homefile(use_empty=True)  # keeps the preferences (factory settings would disable the add-on)
result = bpy.ops.depth_addon.image_to_object(
    filepath=sys.argv[2], model=sys.argv[3], weights=sys.argv[4], resolution=64)
report["run"] = sorted(result)
obj = bpy.context.view_layer.objects.active
report["object"] = {
    "name": obj.name, "type": obj.type, "selected": obj.select_get(),
    "vertices": len(obj.data.vertices), "uv_layers": len(obj.data.uv_layers),
    "material_images": [n.image.name for n in obj.active_material.node_tree.nodes if n.type == "TEX_IMAGE"],
}
camera = bpy.context.scene.camera
report["camera"] = camera.type if camera else None
report["heavy_after_run"] = sorted(m for m in HEAVY if m in sys.modules)

import addon_utils
addon_utils.disable(package)
report["disabled_clean"] = not hasattr(bpy.types, "DEPTH_ADDON_OT_image_to_object") and \
    not hasattr(bpy.types.Scene, "depth_addon")

# Uninstalling the extension (Blender deletes its user folder) keeps dependencies and weights.
import os
for folder in (report["deps_dir"], report["weights_dir"]):
    os.makedirs(folder, exist_ok=True)
    open(os.path.join(folder, "kept.txt"), "w").close()
repos = bpy.context.preferences.extensions.repos
repo_index = next(i for i, repo in enumerate(repos) if repo.module == "user_default")
report["uninstall"] = sorted(bpy.ops.extensions.package_uninstall(repo_index=repo_index, pkg_id="depth_addon"))
report["kept_after_uninstall"] = [os.path.exists(os.path.join(folder, "kept.txt"))
                                  for folder in (report["deps_dir"], report["weights_dir"])]
report["extension_dir_after_uninstall"] = os.path.exists(report["extension_dir"])
print("REPORT " + json.dumps(report))
sys.stdout.flush()
os._exit(0)  # Blender 4.2's own teardown may crash at exit (SIGSEGV) after all this; the report is out
"""


@pytest.mark.slow
@pytest.mark.blender
@pytest.mark.torch
def test_installed_extension_runs_headless(extension_zip, tmp_path):
    checkpoint = reference_checkpoint(MODEL)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["BLENDER_USER_RESOURCES"] = str(tmp_path / "blender_user")
    env.pop("DEPTH_ADDON_WEIGHTS_DIR", None)  # the command line's cache must be the default
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["DEPTH_ADDON_DEPS_DIR"] = str(tmp_path / "deps")
    script = tmp_path / "use_installed.py"
    script.write_text(INSTALLED_SCRIPT)
    cmd = [sys.executable, str(script), str(extension_zip), str(SAMPLES / "chelsea.jpg"), MODEL, str(checkpoint)]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    for problem in ("property not found", "unknown operator", "Traceback"):
        assert problem not in result.stdout + result.stderr
    report = json.loads(lines[-1][len("REPORT "):])

    assert report["install"] == ["FINISHED"] and report["enabled"]
    assert report["heavy_after_enable"] == [], "torch/timm must load only when a run starts"
    assert report["prefs_idname"] == "bl_ext.user_default.depth_addon"
    # One weights cache for the add-on and the command line; dependencies outside the extension.
    assert report["weights_dir"] == str(tmp_path / "cache" / "depth_addon" / "weights")
    assert not report["deps_dir"].startswith(report["extension_dir"])
    assert report["deps_dir"] == str(tmp_path / "deps" / "py311")
    assert report["run"] == ["FINISHED"]
    obj = report["object"]
    assert obj["name"] == "chelsea" and obj["type"] == "MESH" and obj["selected"]
    assert obj["vertices"] > 100 and obj["uv_layers"] == 1 and obj["material_images"]
    assert report["camera"] == "CAMERA"
    # timm loaded privately (nets/_timm_loader.py): the global timm and torchvision stay untouched for other add-ons
    assert report["heavy_after_run"] == ["depth_addon_private_timm", "torch"]
    assert report["disabled_clean"]
    assert report["uninstall"] == ["FINISHED"] and report["kept_after_uninstall"] == [True, True]
