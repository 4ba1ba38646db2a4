"""The torch + timm installer: choices per platform, the pip command lines, and real pip runs.

Real runs go against package indexes served from 127.0.0.1 (stand-in wheels, no network) and,
when it answers, against this platform's real default index (skipped, saying why, when not).
"""

from __future__ import annotations

import functools
import http.server
import os
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, run_python
from depth_addon.ui import deps
from depth_addon.ui.deps import Platform

PLATFORMS = {
    "windows": Platform("windows", "x86_64", (3, 11)),
    "linux": Platform("linux", "x86_64", (3, 11)),
    "linux-arm": Platform("linux", "aarch64", (3, 11)),
    "mac-arm": Platform("macos", "arm64", (3, 11), (14, 5)),
    "mac-intel": Platform("macos", "x86_64", (3, 11), (13, 6)),
}
ALL_CHOICES = [(name, build) for name, plat in PLATFORMS.items() for build in deps.builds_for(plat)]


# -----------------------------------------------------------------------------
# Choices per platform


@pytest.mark.pure
@pytest.mark.parametrize(("plat", "gpu", "expected"), [
    ("windows", None, "CPU"), ("windows", "nvidia", "CUDA"),
    ("linux", None, "CPU"), ("linux", "nvidia", "CUDA"), ("linux", "amd", "ROCM"),
    ("mac-arm", "apple", "MPS"), ("mac-intel", None, "CPU"),
])
def test_default_build_follows_the_platform_and_its_gpu(plat, gpu, expected):
    assert deps.default_build(PLATFORMS[plat], gpu=gpu).id == expected


@pytest.mark.pure
def test_each_platform_offers_what_pytorch_builds_for_it():
    offered = {name: {(b.id, b.index_url) for b in deps.builds_for(plat)} for name, plat in PLATFORMS.items()}
    assert offered["windows"] == {("CPU", deps.PYPI_INDEX), ("CUDA", deps.CUDA12_INDEX)}
    assert offered["linux"] == {("CPU", deps.CPU_INDEX), ("CUDA", deps.PYPI_INDEX), ("ROCM", deps.ROCM_INDEX)}
    assert offered["mac-arm"] == {("MPS", deps.PYPI_INDEX)}
    assert offered["mac-intel"] == {("CPU", deps.PYPI_INDEX)}
    assert deps.CUDA12_INDEX.startswith("https://download.pytorch.org/whl/cu12")
    for _name, build in ALL_CHOICES:  # the text shows a size before anything downloads
        assert "GB download" in build.download and build.description and build.index_name


@pytest.mark.pure
def test_platforms_without_a_supported_torch_say_so_before_any_download():
    intel_313 = Platform("macos", "x86_64", (3, 13), (14, 0))
    assert deps.builds_for(intel_313) == () and deps.default_build(intel_313) is None
    assert "Intel Macs" in deps.unsupported_reason(intel_313) and "2.2.2" in deps.unsupported_reason(intel_313)
    riscv = Platform("linux", "riscv64", (3, 11))
    assert deps.builds_for(riscv) == () and "riscv64" in deps.unsupported_reason(riscv)
    assert all(deps.unsupported_reason(plat) is None for plat in PLATFORMS.values())
    # torch 2.2.2, the last Intel Mac release, is inside the supported range.
    torch_req = deps.BY_MODULE["torch"]
    assert torch_req.supported.startswith(">=2.2.2")


@pytest.mark.pure
def test_current_platform_is_recognised():
    here = deps.current_platform()
    assert here.python == sys.version_info[:2]
    if sys.platform == "linux":
        assert here.system == "linux" and here.machine in ("x86_64", "aarch64")


# -----------------------------------------------------------------------------
# Versions: one file


@pytest.mark.pure
def test_one_versions_file_serves_installer_and_venv():
    packaging = pytest.importorskip("packaging.specifiers")
    names = [req.distribution for req in deps.REQUIREMENTS]
    assert names == ["torch", "torchvision", "timm", "opencv-python-headless", "pillow"]
    assert set(deps.NETWORK_MODULES) <= {req.module for req in deps.REQUIREMENTS}
    for req in deps.REQUIREMENTS:
        assert packaging.SpecifierSet(req.supported).contains(req.tested), req
    script = (REPO_ROOT / "scripts" / "venv_run.sh").read_text()
    assert "depth_addon/dependencies.toml" in script and "['tested']" in script
    dev = (REPO_ROOT / "requirements" / "dev.txt").read_text().split()
    assert all("==" not in line for line in dev)  # pins live in dependencies.toml / constraints.txt only


@pytest.mark.pure
def test_the_venv_has_the_tested_versions():
    if os.environ.get("DEPTH_ADDON_OLDEST"):
        pytest.skip("DEPTH_ADDON_OLDEST: this venv holds the oldest supported versions on purpose")
    for req in deps.REQUIREMENTS:
        installed = deps.installed_version(req.distribution)
        assert installed is not None and installed.split("+")[0] == req.tested, (req, installed)


# -----------------------------------------------------------------------------
# The pip command lines, per platform x choice


@pytest.mark.pure
@pytest.mark.parametrize(("plat", "build"), ALL_CHOICES, ids=[f"{p}-{b.id}" for p, b in ALL_CHOICES])
def test_pip_commands_use_the_chosen_index_only(plat, build, tmp_path):
    resolve = deps.resolve_torch_command(build, tmp_path / "r.json", python="py")
    assert resolve[:3] == ["py", "-m", "pip"] and "--dry-run" in resolve and "--no-deps" in resolve
    assert resolve[resolve.index("--index-url") + 1] == build.index_url
    assert "--extra-index-url" not in resolve and "--find-links" not in resolve
    assert resolve[-2:] == [deps.BY_MODULE["torch"].range_spec, deps.BY_MODULE["torchvision"].range_spec]

    label = "" if build.index_url == deps.PYPI_INDEX else "+cu126"
    pins = [f"torch==2.13.0{label}", f"torchvision==0.28.0{label}"]
    install = deps.install_command(build, tmp_path / "t", pins, tmp_path / "c.txt", python="py")
    assert install[install.index("--target") + 1] == str(tmp_path / "t")
    assert install[install.index("-c") + 1] == str(tmp_path / "c.txt")
    assert "--find-links" not in install and "--no-index" not in install
    assert [a for a in install if a.startswith(("torch==", "torchvision=="))] == pins
    assert not [a for a in install if a.startswith("torch") and "==" not in a]  # torch only exactly as resolved
    for req in deps.REQUIREMENTS[2:]:
        assert req.range_spec in install
    if build.index_url == deps.PYPI_INDEX:
        assert install[install.index("--index-url") + 1] == deps.PYPI_INDEX and "--extra-index-url" not in install
    else:  # PyPI for timm & co.; torch's local label (+cu126, +cpu, +rocm) exists on the chosen index only
        assert install[install.index("--index-url") + 1] == deps.PYPI_INDEX
        assert install[install.index("--extra-index-url") + 1] == build.index_url


@pytest.mark.pure
def test_numpy_is_pinned_to_blenders_and_pip_config_is_ignored():
    assert deps.numpy_constraint("1.26.4") == "numpy==1.26.4\n"
    assert deps.numpy_constraint() == f"numpy=={np.__version__}\n"
    env = deps.pip_environment({"PIP_EXTRA_INDEX_URL": "https://elsewhere", "PIP_FIND_LINKS": "/x", "PATH": "/bin"})
    assert env["PATH"] == "/bin" and env["PIP_CONFIG_FILE"] == os.devnull and env["PYTHONNOUSERSITE"] == "1"
    assert not {"PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"} & set(env)


@pytest.mark.pure
def test_resolved_torch_must_come_from_the_chosen_index():
    cpu = deps.get_build(PLATFORMS["linux"], "CPU")

    def report(url_host):
        return {"install": [
            {"metadata": {"name": name, "version": f"{version}+cpu"},
             "download_info": {"url": f"https://{url_host}/whl/cpu/{name}-{version}+cpu-cp311.whl"}}
            for name, version in (("torch", "2.13.0"), ("torchvision", "0.28.0"))]}

    assert deps.pins_from_report(report("download.pytorch.org"), cpu) == ["torch==2.13.0+cpu",
                                                                          "torchvision==0.28.0+cpu"]
    with pytest.raises(deps.DependencyInstallError, match="not from PyTorch's CPU index"):
        deps.pins_from_report(report("files.pythonhosted.org"), cpu)
    with pytest.raises(deps.DependencyInstallError, match="has no torchvision"):
        deps.pins_from_report({"install": report("download.pytorch.org")["install"][:1]}, cpu)


@pytest.mark.pure
def test_dependencies_live_outside_the_extension_keyed_by_python(monkeypatch, tmp_path):
    monkeypatch.setenv(deps.DEPS_DIR_ENV, str(tmp_path))
    assert deps.dependencies_dir((3, 11)) == tmp_path / "py311"
    assert deps.dependencies_dir((3, 13)) == tmp_path / "py313"
    monkeypatch.delenv(deps.DEPS_DIR_ENV)
    assert "extensions" not in deps.dependencies_dir().parts


@pytest.mark.pure
def test_windows_paths_of_an_installed_torch_stay_under_260_characters():
    """The longest file path in this venv's torch, placed under the Windows folder, fits MAX_PATH."""
    torch_spec = pytest.importorskip("importlib.util").find_spec("torch")
    if torch_spec is None:
        pytest.skip("torch is not installed here")
    site = Path(torch_spec.origin).parents[1]
    longest = max(len(str(path.relative_to(site))) for path in (site / "torch").rglob("*"))
    windows_dir = r"C:\Users\firstname.lastname\AppData\Local\depth_addon\py311" + "\\"
    assert len(windows_dir) + longest < 260, (len(windows_dir), longest)


# -----------------------------------------------------------------------------
# Real pip runs against indexes on 127.0.0.1


def _wheel(folder: Path, name: str, version: str, requires=(), module: str | None = None) -> None:
    """A minimal pure-Python wheel of ``name`` (``<module>/__init__.py``) with ``Requires-Dist`` lines."""
    module = module or name.replace("-", "_")
    norm = name.replace("-", "_")
    dist = f"{norm}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {req}\n" for req in requires)
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n",
        f"{dist}/METADATA": metadata,
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{dist}/RECORD"])
    with zipfile.ZipFile(folder / f"{norm}-{version}-py3-none-any.whl", "w") as whl:
        for path, text in files.items():
            whl.writestr(path, text)


def _simple_index(root: Path, wheels: Path) -> None:
    """A PEP 503 index of the wheels in ``wheels``: ``root/<name>/index.html``."""
    by_name: dict[str, list[str]] = {}
    for whl in sorted(wheels.glob("*.whl")):
        by_name.setdefault(whl.name.split("-")[0].replace("_", "-").lower(), []).append(whl.name)
    for name, files in by_name.items():
        (root / name).mkdir(parents=True)
        links = "".join(f'<a href="../../wheels/{f}">{f}</a>\n' for f in files)
        (root / name / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class LocalIndexes:
    """Two package indexes on 127.0.0.1: a "PyTorch" one (torch +cpu builds) and a "PyPI" one.

    The "PyPI" one also has a *newer* plain torch, which a fallback would pick.
    """

    def __init__(self, root: Path) -> None:
        numpy_version = np.__version__
        for site, wheels in (("torch", [("torch", "2.13.0+cpu", ()),
                                        ("torchvision", "0.28.0+cpu", ("torch==2.13.0", "numpy"))]),
                             ("pypi", [("torch", "2.14.0", ()), ("torchvision", "0.29.0", ("torch==2.14.0",)),
                                       ("timm", "1.0.31", ("torch", "torchvision")),
                                       ("opencv-python-headless", "4.11.0.86", ("numpy>=1.21",), "cv2"),
                                       ("pillow", "13.0.0", (), "PIL"), ("numpy", numpy_version, ()),
                                       ("numpy", "2.4.6", ())])):
            folder = root / site / "wheels"
            folder.mkdir(parents=True)
            for name, version, requires, *module in wheels:
                _wheel(folder, name, version, requires, *module)
            _simple_index(root / site / "simple", folder)
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{self.server.server_port}"
        self.torch_index, self.pypi_index = f"{base}/torch/simple", f"{base}/pypi/simple"
        self.build = deps.TorchBuild("CPU", "CPU", self.torch_index, "the test's torch index", "test build",
                                     "about 0 GB download")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def local_indexes(tmp_path):
    indexes = LocalIndexes(tmp_path / "indexes")
    try:
        yield indexes
    finally:
        indexes.close()


def _closed_port_build() -> deps.TorchBuild:
    return deps.TorchBuild("CPU", "CPU", "http://127.0.0.1:9/whl/cpu", "PyTorch's CPU index (test)", "x",
                           "about 0.3 GB download")


@pytest.mark.pure
def test_installer_installs_torch_from_the_chosen_index_and_no_numpy(local_indexes, tmp_path):
    from depth_addon.ui.deps import InstallJob

    target = tmp_path / "deps" / "py311"
    job = InstallJob(local_indexes.build, target, pypi_index=local_indexes.pypi_index).run_sync()
    assert job.error is None, job.error
    assert job.result == target and not target.with_name("py311.partial").exists()
    versions = dict(path.name.removesuffix(".dist-info").split("-")
                    for path in target.glob("*.dist-info"))
    # torch and torchvision exactly from the chosen index, though "PyPI" had newer ones.
    assert versions["torch"] == "2.13.0+cpu" and versions["torchvision"] == "0.28.0+cpu"
    assert versions["timm"] == "1.0.31" and versions["pillow"] == "13.0.0"
    assert (target / "cv2" / "__init__.py").is_file() and (target / "PIL" / "__init__.py").is_file()
    # Blender's numpy stays the only numpy: pip was held to its version, and its copy dropped.
    assert "numpy" not in versions and not (target / "numpy").exists() and job.removed_numpy
    assert any("Installing collected packages" in line for line in job.lines)


@pytest.mark.pure
def test_an_unreachable_index_stops_at_once_naming_it(tmp_path):
    from depth_addon.ui.deps import InstallJob

    target = tmp_path / "py311"
    target.mkdir()
    (target / "kept.txt").write_text("a working install")
    started = time.perf_counter()
    job = InstallJob(_closed_port_build(), target).run_sync()
    assert isinstance(job.error, deps.DependencyInstallError)
    message = str(job.error)
    assert "PyTorch's CPU index (test) (http://127.0.0.1:9/whl/cpu) cannot be reached" in message
    assert "nothing was installed" in message and "\n" not in message
    assert job.lines == []  # pip never ran, so it could not fall back to another index
    assert (target / "kept.txt").read_text() == "a working install"
    print(f"unreachable index reported after {time.perf_counter() - started:.2f} s")


@pytest.mark.pure
def test_a_failed_or_cancelled_install_keeps_the_previous_one(local_indexes, tmp_path):
    from depth_addon.errors import CancelledError
    from depth_addon.ui.deps import InstallJob

    target = tmp_path / "py311"
    target.mkdir()
    (target / "kept.txt").write_text("a working install")
    for wheel in (Path(local_indexes.server.RequestHandlerClass.keywords["directory"]) / "pypi").rglob("timm*"):
        if wheel.is_dir():  # the "PyPI" index loses timm: pip cannot finish
            for page in wheel.iterdir():
                page.unlink()
            wheel.rmdir()
    failed = InstallJob(local_indexes.build, target, pypi_index=local_indexes.pypi_index).run_sync()
    assert isinstance(failed.error, deps.DependencyInstallError) and "pip failed" in str(failed.error)
    assert "timm" in str(failed.error) and "\n" not in str(failed.error)  # pip's own error, one line
    assert (target / "kept.txt").is_file() and not (target / "torch").exists()

    cancelled = InstallJob(local_indexes.build, target, pypi_index=local_indexes.pypi_index)
    cancelled.cancel()
    cancelled.run_sync()
    assert isinstance(cancelled.error, CancelledError) and (target / "kept.txt").is_file()


@pytest.mark.pure
def test_installer_for_real_on_this_platforms_default_index(tmp_path):
    """The real thing: this platform's default build from its real index into a temp folder."""
    from depth_addon.ui.deps import InstallJob

    build = deps.default_build()
    if build is None:
        pytest.skip(deps.unsupported_reason(deps.current_platform()))
    try:
        deps.probe_index(build)
    except deps.DependencyInstallError as exc:
        # What a user gets: the same one-line error from the real installer, at once.
        job = InstallJob(build, tmp_path / "py311").run_sync()
        assert isinstance(job.error, deps.DependencyInstallError) and build.index_url in str(job.error)
        assert job.lines == [] and not (tmp_path / "py311").exists()
        print(f"SKIP REASON: {exc}")
        pytest.skip(f"{build.index_name} is not reachable from here: {exc}")
    job = InstallJob(build, tmp_path / "py311").run_sync()
    assert job.error is None, job.error
    assert (tmp_path / "py311" / "torch").is_dir() and (tmp_path / "py311" / "timm").is_dir()
    assert not (tmp_path / "py311" / "numpy").exists()


# -----------------------------------------------------------------------------
# In Blender: the installer operator, and what works before torch


@pytest.mark.blender
def test_install_operator_installs_into_the_dependencies_folder(local_indexes, monkeypatch):
    import bpy

    import depth_addon
    from depth_addon.ui import preferences

    depth_addon.register()
    monkeypatch.setattr(preferences, "chosen_build", lambda context=None: local_indexes.build)
    monkeypatch.setattr(deps, "PYPI_INDEX", local_indexes.pypi_index)
    target = preferences.site_packages_dir()
    assert target == deps.dependencies_dir() and "extensions" not in target.parts
    system = bpy.context.preferences.system
    system.use_online_access = True
    try:
        assert bpy.ops.depth_addon.install_dependencies() == {"FINISHED"}
        assert (target / "torch" / "__init__.py").read_text() == "__version__ = '2.13.0+cpu'\n"
        assert sys.path[-1] == str(target)  # appended: Blender's own modules keep priority
        assert not (target / "numpy").exists()
        monkeypatch.setattr(preferences, "chosen_build", lambda context=None: _closed_port_build())
        with pytest.raises(RuntimeError, match=r"PyTorch's CPU index \(test\) .* cannot be reached"):
            bpy.ops.depth_addon.install_dependencies()
        assert (target / "torch").is_dir()  # the working install stays
        assert bpy.ops.depth_addon.remove_dependencies() == {"FINISHED"}
        assert not target.exists() and str(target) not in sys.path
    finally:
        system.use_online_access = False
        depth_addon.unregister()


NO_PICTURE_LIBRARIES = r"""
import json, sys
for name in ("torch", "torchvision", "timm", "cv2", "PIL"):
    sys.modules[name] = None   # a stock Blender: numpy only
import bpy
import depth_addon
from depth_addon.ui import deps

depth_addon.register()
report = {"missing": list(deps.missing_modules(refresh=True))}
photo, depth = sys.argv[1], sys.argv[2]
try:
    bpy.ops.depth_addon.image_to_object(filepath=photo, resolution=32)
except RuntimeError as exc:
    report["network_run"] = str(exc)
try:  # the fill behind tears needs OpenCV: it says so, and the import works with the fill off
    bpy.ops.depth_addon.image_to_object(filepath=photo, depth_path=depth, resolution=32, add_camera=False)
except RuntimeError as exc:
    report["fill_run"] = str(exc)
report["depth_run"] = sorted(bpy.ops.depth_addon.image_to_object(filepath=photo, depth_path=depth, resolution=32,
                                                                 add_camera=False, fill=False))
obj = bpy.context.view_layer.objects.active
import numpy as np
co = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
obj.data.vertices.foreach_get("co", co)
report["co"] = co.tolist()
report["images"] = sorted(image.name for image in bpy.data.images)
report["loaded"] = sorted(m for m in ("torch", "timm", "cv2", "PIL") if sys.modules.get(m) is not None)
print("REPORT " + json.dumps(report))
import os
sys.stdout.flush()
os._exit(0)  # Blender's own teardown can crash (4.2) or hang (4.5) at exit; the report is out
"""


@pytest.mark.blender
def test_depth_map_import_works_without_torch_pillow_or_opencv(tmp_path, sample_photo):
    """A stock Blender's Python (numpy only): the depth map imports, the network run names what is missing."""
    import json

    import bpy

    import depth_addon

    depth_file = str(REPO_ROOT / "samples" / "chelsea_depth.png")
    script = tmp_path / "no_libraries.py"
    script.write_text(NO_PICTURE_LIBRARIES)
    env = {"BLENDER_USER_RESOURCES": str(tmp_path / "user")}
    result = run_python(script, sample_photo, depth_file, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(lines[-1][len("REPORT "):])
    assert report["missing"] == ["torch", "timm", "cv2", "PIL"] and report["loaded"] == []
    assert "torch, timm, OpenCV and Pillow are not installed" in report["network_run"]
    assert "the fill behind tears needs OpenCV" in report["fill_run"]
    assert report["depth_run"] == ["FINISHED"]
    assert "chelsea.jpg" in report["images"]  # the photo as texture; the temporary reads left nothing

    # The same import with Pillow and OpenCV here gives the same geometry.
    depth_addon.register()
    try:
        bpy.ops.depth_addon.image_to_object(filepath=str(sample_photo), depth_path=depth_file, resolution=32,
                                            add_camera=False, fill=False)
        obj = bpy.context.view_layer.objects.active
        co = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
        obj.data.vertices.foreach_get("co", co)
    finally:
        depth_addon.unregister()
    np.testing.assert_allclose(np.array(report["co"], dtype=np.float32), co, rtol=1e-5, atol=1e-5)


@pytest.mark.pure
def test_blender_script_finds_the_installed_dependencies(tmp_path):

    installed = tmp_path / f"py{sys.version_info[0]}{sys.version_info[1]}"
    (installed / "installed_by_depth_addon").mkdir(parents=True)
    (installed / "installed_by_depth_addon" / "__init__.py").write_text("FOUND = True\n")
    code = ("import runpy, sys; runpy.run_path(sys.argv[1], run_name='blender_depth_mesh'); "
            "import installed_by_depth_addon; print(sys.path.index(sys.argv[2]) == len(sys.path) - 1)")
    env = {deps.DEPS_DIR_ENV: str(tmp_path)}
    result = run_python(REPO_ROOT / "scripts" / "blender_depth_mesh.py", installed, code=code, env=env, cwd=tmp_path,
                        timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr


@pytest.mark.blender
def test_preferences_draw_every_installer_state(monkeypatch, capfd, tmp_path):
    import addon_utils
    import bpy

    from depth_addon.ui import modal, preferences

    assert addon_utils.enable("depth_addon", default_set=True) is not None  # real preferences
    try:
        prefs = preferences.get_preferences()
        assert prefs.torch_build == preferences.TORCH_BUILD_DEFAULT
        states = [("missing", ("torch", "timm")), ("found", ())]
        for _label, missing in states:
            monkeypatch.setattr(deps, "_missing", missing)
            _draw(bpy, preferences, prefs)
        monkeypatch.setitem(modal.ACTIVE, "install", deps.InstallJob(_closed_port_build(), tmp_path / "py311"))
        _draw(bpy, preferences, prefs)  # progress + Cancel
        modal.ACTIVE.pop("install")
        monkeypatch.setattr(preferences, "PLATFORM", Platform("macos", "x86_64", (3, 13), (14, 0)))
        assert not bpy.ops.depth_addon.install_dependencies.poll()
        _draw(bpy, preferences, prefs)  # says there is no torch, offers no download
    finally:
        addon_utils.disable("depth_addon", default_set=True)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "unknown operator" not in out + err


def _draw(bpy, preferences, prefs) -> None:
    layout = bpy.context.window_manager.popmenu_begin__internal("installer test", icon="NONE").layout
    preferences.draw_preferences(prefs, layout, bpy.context)
