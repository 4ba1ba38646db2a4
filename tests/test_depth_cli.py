"""`python -m depth_addon depth` and the estimate_depth pipeline behind it.

Pure tests replace ``midas.load_model`` with a small deterministic stand-in (our own
function, not Blender's) to check stages, cancelling, the CPU fallback and the CLI wiring;
``torch`` tests run the real model from the deterministic reference checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_weights import FILENAME, PAYLOAD, serve_weights

from conftest import REPO_ROOT, reference_checkpoint, reference_data, run_cli, run_python
from depth_addon import midas, pipeline
from depth_addon.cli import main
from depth_addon.errors import CancelledError, DepthAddonError, WeightsUnavailableError
from depth_addon.imageio import read_depth, write_depth
from depth_addon.midas import weights

MODEL = "midas_v21_small_256"


class StubModel:
    """Stands in for MidasModel: depth = mean of the channels (deterministic)."""

    def __init__(self, device, fail_on=()):
        self.device = device
        self.fail_on = fail_on

    def predict(self, rgb):
        if self.device in self.fail_on:
            raise RuntimeError(f"{self.device.upper()} out of memory. Tried to allocate 2.00 GiB")
        return rgb.astype(np.float32).mean(axis=2)


class StubLoader:
    """Stands in for ``midas.load_model``; records its calls."""

    def __init__(self):
        self.calls: list[dict] = []
        self.fail_on: list[str] = []

    def __call__(self, model_type, checkpoint=None, device="auto", precision="fp32", **_):
        self.calls.append({"model_type": model_type, "checkpoint": checkpoint, "device": device,
                           "precision": precision})
        return StubModel("cuda" if device == "auto" else device, fail_on=self.fail_on)


@pytest.fixture
def stub_load_model(monkeypatch):
    loader = StubLoader()
    monkeypatch.setattr(midas, "load_model", loader, raising=False)
    return loader


@pytest.fixture
def server(monkeypatch):
    yield from serve_weights(monkeypatch)


@pytest.fixture
def photo(tmp_path) -> Path:
    rgb = np.random.default_rng(3).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    return tmp_path / "photo.png"


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(folder))
    return folder


def _closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# --- pipeline (pure) -------------------------------------------------------------------------


@pytest.mark.pure
def test_pipeline_stages_with_download(server, empty_cache, stub_load_model):
    rgb = np.full((4, 6, 3), 90, np.uint8)
    seen = []
    depth = pipeline.estimate_depth(rgb, MODEL, progress=lambda f, m: seen.append((f, m)))
    np.testing.assert_array_equal(depth, np.full((4, 6), 90, np.float32))
    messages = [m for _, m in seen]
    assert messages[0].startswith("Looking for")
    assert any(m.startswith(f"Downloading {FILENAME}") for m in messages)
    assert [m.split()[0] for m in messages[-3:]] == ["Loading", "Running", "Depth"]
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert stub_load_model.calls == [{"model_type": MODEL, "checkpoint": empty_cache / FILENAME,
                                "device": "auto", "precision": "fp32"}]
    assert (empty_cache / FILENAME).read_bytes() == PAYLOAD


@pytest.mark.pure
def test_pipeline_explicit_weights_skip_the_cache(tmp_path, stub_load_model, empty_cache):
    checkpoint = tmp_path / "mine.pt"
    checkpoint.write_bytes(b"x")
    seen = []
    pipeline.estimate_depth(np.zeros((2, 2, 3), np.uint8), MODEL, weights=str(checkpoint), device="cpu",
                            precision="bf16", progress=lambda f, m: seen.append(m))
    assert not any("Looking" in m or "Downloading" in m for m in seen)
    assert stub_load_model.calls[0]["checkpoint"] == checkpoint
    assert (stub_load_model.calls[0]["device"], stub_load_model.calls[0]["precision"]) == ("cpu", "bf16")
    assert not empty_cache.exists()


@pytest.mark.pure
def test_pipeline_missing_weights_file(tmp_path, stub_load_model):
    with pytest.raises(WeightsUnavailableError, match="weights file not found"):
        pipeline.estimate_depth(np.zeros((2, 2, 3), np.uint8), MODEL, weights=tmp_path / "nope.pt")
    assert stub_load_model.calls == []


@pytest.mark.pure
def test_pipeline_offline_without_cache(empty_cache, stub_load_model):
    with pytest.raises(WeightsUnavailableError, match="online access is off"):
        pipeline.estimate_depth(np.zeros((2, 2, 3), np.uint8), MODEL, allow_download=False)
    assert stub_load_model.calls == []


@pytest.mark.pure
@pytest.mark.parametrize("cancel_at_check", [1, 2, 3])
def test_pipeline_cancel_between_stages(tmp_path, stub_load_model, cancel_at_check):
    checkpoint = tmp_path / "w.pt"
    checkpoint.write_bytes(b"x")
    checks = []

    def cancel():
        checks.append(None)
        return len(checks) >= cancel_at_check

    with pytest.raises(CancelledError):
        pipeline.estimate_depth(np.zeros((2, 2, 3), np.uint8), MODEL, weights=checkpoint, cancel=cancel)
    # Checks 1 and 2 come before loading the model, check 3 after it.
    assert len(stub_load_model.calls) == (1 if cancel_at_check == 3 else 0)


@pytest.mark.pure
def test_pipeline_cancel_during_download_keeps_part(server, empty_cache, stub_load_model):
    with pytest.raises(CancelledError):
        pipeline.estimate_depth(np.zeros((2, 2, 3), np.uint8), MODEL,
                                progress=lambda f, m: None, cancel=lambda: server.requests != [])
    assert (empty_cache / (FILENAME + ".part")).exists()
    assert stub_load_model.calls == []


@pytest.mark.pure
def test_pipeline_out_of_gpu_memory_retries_on_cpu(tmp_path, stub_load_model):
    checkpoint = tmp_path / "w.pt"
    checkpoint.write_bytes(b"x")
    stub_load_model.fail_on.append("cuda")
    seen = []
    rgb = np.full((3, 3, 3), 7, np.uint8)
    depth = pipeline.estimate_depth(rgb, MODEL, weights=checkpoint, progress=lambda f, m: seen.append(m))
    np.testing.assert_array_equal(depth, np.full((3, 3), 7, np.float32))
    assert [call["device"] for call in stub_load_model.calls] == ["auto", "cpu"]
    assert any("Out of cuda memory; retrying on the CPU" in m for m in seen)


@pytest.mark.pure
def test_pipeline_out_of_memory_on_cpu_is_not_retried(tmp_path, stub_load_model):
    checkpoint = tmp_path / "w.pt"
    checkpoint.write_bytes(b"x")
    stub_load_model.fail_on.append("cpu")
    with pytest.raises(DepthAddonError, match="not enough memory to run .* on the CPU; choose a smaller model"):
        pipeline.estimate_depth(np.zeros((2, 2, 3), np.uint8), MODEL, weights=checkpoint, device="cpu")
    assert len(stub_load_model.calls) == 1


@pytest.mark.pure
@pytest.mark.parametrize("bad", [{"device": "gpu"}, {"precision": "fp8"}, {"rgb": np.zeros((4, 4), np.uint8)},
                                 {"rgb": np.zeros((4, 4, 3), np.float32)}])
def test_pipeline_refuses_bad_arguments_before_any_download(server, empty_cache, stub_load_model, bad):
    arguments = {"rgb": np.zeros((4, 4, 3), np.uint8), **bad}
    with pytest.raises(ValueError, match="unknown device|unknown precision|expected an? (\\(H, W, 3\\)|uint8) RGB image"):
        pipeline.estimate_depth(model_type=MODEL, **arguments)
    assert server.requests == [] and stub_load_model.calls == []


# --- CLI (pure) ------------------------------------------------------------------------------


def _cli(*args, env=None):
    return run_cli("depth", *args, env=env)


@pytest.mark.pure
def test_cli_offline_is_one_clear_line(photo, tmp_path):
    url = _closed_port_url()
    folder = tmp_path / "weights"
    result = _cli(photo, "-o", tmp_path / "d.png",
                  env={weights.URL_BASE_ENV: url, weights.WEIGHTS_DIR_ENV: str(folder)})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: could not download")
    assert f"{url}/{FILENAME}" in lines[0] and str(folder) in lines[0] and "--weights FILE" in lines[0]
    assert result.stdout == ""
    assert not (tmp_path / "d.png").exists()


@pytest.mark.pure
@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["{photo}", "-o", "{tmp}/d.jpg"], "cannot write depth as '.jpg'"),
        (["{tmp}/none.jpg", "-o", "{tmp}/d.png"], "image file not found"),
        (["{photo}", "-o", "{tmp}/d.npy", "--colormap", "inferno"], ".png output only"),
        (["{photo}", "-o", "{tmp}/d.png", "--weights", "{tmp}/none.pt"], "weights file not found"),
    ],
)
def test_cli_user_errors_exit_2(photo, tmp_path, args, problem, capsys):
    argv = ["depth", *(a.format(photo=photo, tmp=tmp_path) for a in args)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and problem in err and err.count("\n") == 1


@pytest.mark.pure
def test_cli_help_works_without_docstrings():
    """python -OO strips docstrings; the parser must not be built from them."""
    result = run_python("-OO", "-m", "depth_addon", "--help", env={"PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr
    assert "depth" in result.stdout and "mesh" in result.stdout


@pytest.mark.pure
def test_cli_rejects_unknown_model_and_colormap(photo, tmp_path, capsys):
    for extra in (["--model", "midas_v9"], ["--colormap", "sunset"]):
        with pytest.raises(SystemExit) as info:
            main(["depth", str(photo), "-o", str(tmp_path / "d.png"), *extra])
        assert info.value.code == 2
        assert "invalid choice" in capsys.readouterr().err


@pytest.mark.pure
def test_cli_downloads_with_progress_bar_then_writes(server, empty_cache, stub_load_model, photo, tmp_path,
                                                     capsys):
    out = tmp_path / "out" / "d.png"
    assert main(["depth", str(photo), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"downloading {MODEL}" in captured.err and "100%" in captured.err  # the tqdm bar
    assert f"wrote {out} (32x24)" in captured.out
    assert stub_load_model.calls[0]["checkpoint"] == empty_cache / FILENAME
    rgb = np.asarray(Image.open(photo))
    write_depth(tmp_path / "expected.png", rgb.astype(np.float32).mean(axis=2))
    np.testing.assert_array_equal(read_depth(out), read_depth(tmp_path / "expected.png"))


# --- CLI with the real model (torch) ----------------------------------------------------------


@pytest.fixture(scope="module")
def reference_photo(tmp_path_factory) -> tuple[Path, np.ndarray]:
    rgb = reference_data(MODEL)["image"]
    path = tmp_path_factory.mktemp("ref") / "reference.png"
    Image.fromarray(rgb).save(path)
    return path, rgb


@pytest.fixture(scope="module")
def predicted(reference_photo) -> np.ndarray:
    model = midas.load_model(MODEL, checkpoint=reference_checkpoint(MODEL), device="cpu")
    return model.predict(reference_photo[1])


def _depth_cli_writes(photo: Path, out: Path) -> Path:
    argv = ["depth", str(photo), "-o", str(out), "--weights", str(reference_checkpoint(MODEL)), "--device", "cpu", "-q"]
    assert main(argv) == 0
    return out


@pytest.mark.torch
def test_cli_png_equals_write_depth_of_predict(reference_photo, predicted, tmp_path):
    out = _depth_cli_writes(reference_photo[0], tmp_path / "depth.png")
    write_depth(tmp_path / "expected.png", predicted)
    got, expected = read_depth(out), read_depth(tmp_path / "expected.png")
    assert got.shape == reference_photo[1].shape[:2]
    np.testing.assert_array_equal(got, expected)
    assert (got.min(), got.max()) == (predicted.min(), predicted.max())  # the recorded value range


@pytest.mark.torch
def test_cli_npy_equals_predict_exactly(reference_photo, predicted, tmp_path):
    got = np.load(_depth_cli_writes(reference_photo[0], tmp_path / "depth.npy"))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, predicted)


@pytest.mark.slow
@pytest.mark.torch
def test_cli_subprocess_colormap(reference_photo, predicted, tmp_path):
    out = tmp_path / "depth_inferno.png"
    result = _cli(reference_photo[0], "-o", out, "--weights", reference_checkpoint(MODEL),
                  "--model", MODEL, "--colormap", "inferno")
    assert result.returncode == 0, result.stderr
    assert "Running" in result.stderr and f"wrote {out}" in result.stdout
    write_depth(tmp_path / "expected.png", predicted, colormap="inferno")
    with Image.open(out) as got, Image.open(tmp_path / "expected.png") as expected:
        assert got.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


@pytest.mark.pure
def test_ctrl_c_is_one_line_and_status_130(capsys):
    from depth_addon.cli.reporting import run_command

    def interrupted(args):
        raise KeyboardInterrupt

    assert run_command(interrupted, None) == 130
    assert capsys.readouterr().err == "cancelled\n"
