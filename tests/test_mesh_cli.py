"""``python -m depth_addon mesh`` and ``blender -b --python scripts/blender_depth_mesh.py -- ...``."""

from __future__ import annotations

import runpy

import pytest

from conftest import REPO_ROOT, SAMPLES, point_count, point_object_type, run_cli, run_python

SCRIPT = REPO_ROOT / "scripts" / "blender_depth_mesh.py"
SAMPLE_DEPTH = SAMPLES / "chelsea_depth.png"


def run_mesh(*args, weights_dir):
    return run_cli("mesh", *args, env={"DEPTH_ADDON_WEIGHTS_DIR": str(weights_dir)})


def script_main():
    return runpy.run_path(str(SCRIPT), run_name="blender_depth_mesh")["main"]


@pytest.mark.pure
def test_offline_without_weights_exits_2_and_writes_nothing(tmp_path, sample_photo):
    out = tmp_path / "out"
    result = run_mesh(sample_photo, "-o", out / "chelsea.blend", "-o", out / "chelsea.glb",
                     weights_dir=tmp_path / "weights")
    assert result.returncode == 2, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "midas_v21_small_256.pt" in error_lines[0], result.stderr
    assert "127.0.0.1:9" in error_lines[0]  # conftest's closed loopback port, never the real host
    assert "--weights" in error_lines[0] and "Traceback" not in result.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.pure
def test_unknown_output_format_exits_2(tmp_path, sample_photo):
    result = run_mesh(sample_photo, "--depth", SAMPLE_DEPTH, "-o", tmp_path / "x.fbx", weights_dir=tmp_path)
    assert result.returncode == 2 and ".fbx" in result.stderr
    assert not (tmp_path / "x.fbx").exists()


@pytest.mark.pure
def test_unknown_device_is_refused_before_any_work(tmp_path, sample_photo, capsys):
    from depth_addon.cli.mesh_cmd import build_parser

    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([str(sample_photo), "-o", str(tmp_path / "x.blend"), "--device", "gpu"])
    assert info.value.code == 2 and "invalid choice: 'gpu'" in capsys.readouterr().err


@pytest.mark.pure
def test_without_bpy_exits_2_before_the_depth_work(tmp_path, sample_photo):
    out = tmp_path / "x.blend"
    code = (
        "import sys; sys.modules['bpy'] = None\n"
        "from depth_addon.cli import main\n"
        f"sys.exit(main(['mesh', {str(sample_photo)!r}, '--depth', {str(SAMPLE_DEPTH)!r}, '-o', {str(out)!r}]))\n"
    )
    result = run_python(code=code)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: the mesh command needs Blender's Python module 'bpy'")
    assert result.stderr.count("\n") == 1 and not out.exists()


@pytest.mark.pure
def test_script_shares_the_cli_parser():
    import argparse

    from depth_addon.cli import build_parser
    from depth_addon.cli.mesh_cmd import build_parser as mesh_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    cli_options = {tuple(a.option_strings) for a in sub.choices["mesh"]._actions}
    assert cli_options == {tuple(a.option_strings) for a in mesh_parser()._actions}
    assert "mesh_cmd.main" in SCRIPT.read_text()  # the script has no argument list of its own


@pytest.mark.blender
def test_cli_with_the_sample_depth_writes_blend_and_glb(tmp_path, sample_photo):
    import bpy

    out = tmp_path / "out"
    result = run_mesh(sample_photo, "--depth", SAMPLE_DEPTH, "--resolution", "96", "--no-tear",
                     "-o", out / "chelsea.blend", "-o", out / "chelsea.glb", weights_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (out / "chelsea.glb").stat().st_size > 0
    bpy.ops.wm.open_mainfile(filepath=str(out / "chelsea.blend"))
    obj = bpy.data.objects["chelsea"]
    nx, ny = 96, round(96 * 300 / 451)
    assert obj.type == "MESH" and len(obj.data.vertices) == nx * ny + 2 * (nx + ny) - 4  # grid + the fill's rim
    assert bpy.context.scene.camera == obj["depth_addon_camera"]
    assert (bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y) == (451, 300)
    assert '"depth_kind": "relative"' in obj["depth_addon_settings"]


@pytest.mark.blender
def test_blender_script_main_with_an_argv_list(tmp_path, sample_photo):
    import bpy

    main = script_main()
    out = tmp_path / "script"
    status = main([str(sample_photo), "--depth", str(SAMPLE_DEPTH), "--mode", "points", "--stride", "6",
                   "-o", str(out / "cloud.blend"), "-o", str(out / "cloud.ply")])
    assert status == 0
    assert (out / "cloud.ply").stat().st_size > 0
    bpy.ops.wm.open_mainfile(filepath=str(out / "cloud.blend"))
    cloud = bpy.data.objects["chelsea"]
    assert cloud.type == point_object_type() and point_count(cloud) == len(range(0, 300, 6)) * len(range(0, 451, 6))
    assert main([str(sample_photo), "--depth", str(tmp_path / "missing.npy"), "-o", str(out / "x.blend")]) == 2
    assert not (out / "x.blend").exists()


@pytest.mark.torch
@pytest.mark.blender
def test_cli_runs_midas_with_a_weights_file(tmp_path, sample_photo):
    import bpy

    from conftest import reference_checkpoint

    weights = reference_checkpoint("midas_v21_small_256")
    out = tmp_path / "midas"
    result = run_mesh(sample_photo, "--weights", weights, "--device", "cpu", "--resolution", "64",
                     "-o", out / "chelsea.blend", weights_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    bpy.ops.wm.open_mainfile(filepath=str(out / "chelsea.blend"))
    obj = bpy.data.objects["chelsea"]
    assert '"depth_kind": "inverse"' in obj["depth_addon_settings"] and len(obj.data.polygons) > 0


@pytest.mark.pure
def test_fill_flags_map_onto_the_settings():
    from depth_addon.cli.mesh_cmd import build_parser, settings_from_args

    defaults = settings_from_args(build_parser().parse_args(["photo.jpg", "-o", "out.blend"]))
    assert defaults.fill and defaults.fill_width == 0.05 and not defaults.fill_points
    changed = settings_from_args(build_parser().parse_args(
        ["photo.jpg", "-o", "out.blend", "--no-fill", "--fill-width", "0.1", "--fill-points"]))
    assert (changed.fill, changed.fill_width, changed.fill_points) == (False, 0.1, True)


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.blender
def test_cli_runs_depth_anything_metric_in_metres(tmp_path, sample_photo):
    import bpy

    from conftest import reference_checkpoint

    model = "depth_anything_v2_metric_hypersim_vits"
    out = tmp_path / "dav2"
    result = run_mesh(sample_photo, "--model", model, "--weights", reference_checkpoint(model), "--device", "cpu",
                     "--resolution", "48", "--no-tear", "-o", out / "chelsea.blend", weights_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    bpy.ops.wm.open_mainfile(filepath=str(out / "chelsea.blend"))
    obj = bpy.data.objects["chelsea"]
    assert '"depth_kind": "metric"' in obj["depth_addon_settings"] and len(obj.data.polygons) > 0
