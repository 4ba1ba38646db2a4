"""Classes of bad input, each one clear line (issue 10): settings, output paths, API arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import SAMPLES, run_cli
from depth_addon.errors import DepthAddonError
from depth_addon.settings import BuildSettings

SAMPLE_DEPTH = SAMPLES / "chelsea_depth.png"
FLOAT_FIELDS = ("fov_deg", "tear_threshold", "near", "far", "relief_strength", "point_size")


@pytest.mark.pure
@pytest.mark.parametrize("name", FLOAT_FIELDS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_every_float_setting_is_finite_checked(name, value):
    with pytest.raises(DepthAddonError, match=f"{name} must be a finite number"):
        BuildSettings(**{name: value})


@pytest.mark.pure
@pytest.mark.parametrize(("name", "value"), [("resolution", "512"), ("resolution", 2.5), ("tear", "yes"),
                                             ("near", "1"), ("output", 3), ("stride", True)])
def test_settings_of_the_wrong_type_name_the_field(name, value):
    with pytest.raises(DepthAddonError, match=f"invalid settings: {name} must be"):
        BuildSettings(**{name: value})


@pytest.mark.pure
def test_numpy_numbers_are_fine():
    settings = BuildSettings(near=np.float32(2.0), far=np.float64(20.0), resolution=np.int64(64))
    assert settings.near == 2.0 and settings.resolution == 64


def run_mesh(*args):
    return run_cli("mesh", *args)


@pytest.mark.pure
@pytest.mark.parametrize("where", ["parent_is_a_file", "existing_folder"])
def test_mesh_output_path_problems_exit_2_before_work(tmp_path, sample_photo, where):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    (tmp_path / "out.glb").mkdir()
    output = {"parent_is_a_file": blocker / "sub" / "out.glb", "existing_folder": tmp_path / "out.glb"}[where]
    # No --depth: the check must come before the (here impossible) weights download.
    result = run_mesh(sample_photo, "-o", tmp_path / "fine.blend", "-o", output)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: cannot write {output}") and result.stderr.count("\n") == 1
    assert "download" not in result.stderr and not (tmp_path / "fine.blend").exists()


@pytest.mark.pure
def test_depth_output_into_a_file_exits_2(tmp_path, sample_photo):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    result = run_cli("depth", sample_photo, "-o", blocker / "d.png")
    assert result.returncode == 2 and result.stderr.startswith("error: cannot write") and "is a file" in result.stderr


@pytest.mark.pure
def test_nan_float_option_exits_2(tmp_path, sample_photo):
    result = run_mesh(sample_photo, "--depth", SAMPLE_DEPTH, "--relief-strength", "nan", "-o", tmp_path / "x.obj")
    assert result.returncode == 2 and "relief_strength must be a finite number" in result.stderr
    assert not (tmp_path / "x.obj").exists()


def _datablock_counts():
    import bpy

    return {kind: len(getattr(bpy.data, kind)) for kind in ("objects", "meshes", "images", "materials", "cameras")}


@pytest.mark.blender
@pytest.mark.parametrize(("arguments", "error", "names"), [
    ({"settings": {"resolution": 64}}, TypeError, "settings must be"),
    ({"collection": "Collection"}, TypeError, "collection must be a bpy.types.Collection"),
    ({"name": 7}, TypeError, "name must be a string"),
    ({"depth": np.zeros((4, 6, 3), np.float32)}, DepthAddonError, "depth must be an (H, W) array"),
    ({"depth": np.zeros((0, 0), np.float32)}, DepthAddonError, "depth must be an (H, W) array"),
    ({"depth": [["a", "b"], ["c", "d"]]}, DepthAddonError, "depth must hold numbers"),
    ({"depth": np.ones((3, 3)), "depth_kind": "meters"}, DepthAddonError, "depth_kind must be one of"),
])
def test_api_arguments_are_checked_at_the_door(sample_photo, arguments, error, names):
    from depth_addon import api

    before = _datablock_counts()
    with pytest.raises(error) as info:
        api.image_to_object(sample_photo, **({"depth": np.ones((30, 45), np.float32)} | arguments))
    assert names in str(info.value)
    assert _datablock_counts() == before


@pytest.mark.blender
def test_build_from_depth_checks_its_arguments_too(sample_photo):
    from depth_addon import api

    before = _datablock_counts()
    with pytest.raises(TypeError, match="settings must be"):
        api.build_from_depth(sample_photo, np.ones((30, 45)), {"output": "mesh"})
    with pytest.raises(DepthAddonError, match="fov_deg must be a finite number"):
        api.build_from_depth(sample_photo, np.ones((30, 45)), BuildSettings(), fov_deg=math.nan)
    assert _datablock_counts() == before


@pytest.mark.pure
def test_every_error_is_one_line(capsys):
    """A library's multi-line message (urllib's redirect loop has three) is folded into the one error line."""
    import argparse

    from depth_addon.cli.reporting import run_command

    def fails(args):
        raise DepthAddonError("could not download x.pt: HTTP 302 The HTTP server returned a redirect error\n"
                              "The last 30x error message was:\nFound")

    assert run_command(fails, argparse.Namespace()) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: could not download x.pt") and "was: Found" in err
