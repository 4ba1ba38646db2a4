"""torch + timm for Blender's Python: which build fits this platform, where it lives, the pip commands.

No bpy and no torch import here (the CLI script and tests use it too).

- ``REQUIREMENTS`` comes from ``depth_addon/dependencies.toml``, the one source of versions:
  the installer asks pip for each package's *supported* range (pip picks the newest wheel the
  platform has); the development venv pins the *tested* version.
- ``TORCH_BUILDS`` is the table of installer choices per platform (index, text, download size).
- The installed packages live in ``dependencies_dir()``: outside the extension's own folder
  (Blender deletes that on uninstall), one folder per Python version (Blender 4.2-5.0 use
  3.11, later ones 3.13), short enough for Windows paths. It is *appended* to ``sys.path``,
  so Blender's own modules, numpy first of all, keep priority.
- The install never falls back to another index: the chosen index is probed first, torch and
  torchvision are resolved on it alone, and pip is run without the user's pip configuration.
- ``InstallJob`` (a ``CommandJob``, a ``ui.jobs.Job``) runs those pip commands in subprocesses,
  off Blender's main thread, into a ``.partial`` folder swapped in only when all succeeded.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import threading
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DepthAddonError
from .jobs import Job

VERSIONS_FILE = Path(__file__).resolve().parents[1] / "dependencies.toml"
PYPI_INDEX = "https://pypi.org/simple"
DEPS_DIR_ENV = "DEPTH_ADDON_DEPS_DIR"


class DependencyInstallError(DepthAddonError):
    """The installer cannot or did not install torch, timm, OpenCV and Pillow (message says why and what to do)."""


@dataclass(frozen=True)
class Requirement:
    distribution: str   # what pip installs, e.g. "opencv-python-headless"
    module: str         # what Python imports, e.g. "cv2"
    supported: str      # PEP 440 range the code works with, e.g. ">=2.2.2,<3"
    tested: str         # the exact version development and CI use

    @property
    def range_spec(self) -> str:
        return f"{self.distribution}{self.supported}"

    @property
    def pin(self) -> str:
        return f"{self.distribution}=={self.tested}"


def load_requirements(path: Path = VERSIONS_FILE) -> tuple[Requirement, ...]:
    with open(path, "rb") as fh:
        table = tomllib.load(fh)
    return tuple(Requirement(name, row["module"], row["supported"], row["tested"]) for name, row in table.items())


REQUIREMENTS = load_requirements()
BY_MODULE = {req.module: req for req in REQUIREMENTS}
TORCH_PACKAGES = ("torch", "torchvision")   # resolved on the chosen index only

# What each feature needs beyond Blender's own Python (import names).
NETWORK_MODULES = ("torch", "timm", "cv2", "PIL")   # running MiDaS on a photo
# Importing an existing depth map needs none: Blender's own image loading reads the pictures
# when Pillow/OpenCV are missing (ui/operators.py).


# -----------------------------------------------------------------------------
# Platforms and the torch builds the installer offers


@dataclass(frozen=True)
class Platform:
    system: str                     # "windows", "linux", "macos"
    machine: str                    # "x86_64", "arm64" (macOS/Windows), "aarch64" (Linux)
    python: tuple[int, int]
    macos: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        names = {"windows": "Windows", "linux": "Linux", "macos": "macOS"}
        version = f" {self.macos[0]}.{self.macos[1]}" if self.macos else ""
        return f"{names.get(self.system, self.system)}{version} {self.machine}, Python {self.python[0]}.{self.python[1]}"


def current_platform() -> Platform:
    system = {"Windows": "windows", "Linux": "linux", "Darwin": "macos"}.get(platform.system(), platform.system())
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "x64": "x86_64", "arm64": "arm64" if system != "linux" else "aarch64"}.get(
        machine, machine)
    macos = None
    if system == "macos":
        parts = (platform.mac_ver()[0] or "0.0").split(".")
        macos = (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)
    return Platform(system, machine, sys.version_info[:2], macos)


@dataclass(frozen=True)
class TorchBuild:
    """One installer choice: a torch build from one package index."""

    id: str
    label: str
    index_url: str
    index_name: str
    description: str
    download: str                   # what it downloads, measured where we could
    gpu: str | None = None          # "nvidia", "amd", "apple": what the default detection looks for

    @property
    def summary(self) -> str:
        return f"{self.label}: {self.download}"


CUDA12_INDEX = "https://download.pytorch.org/whl/cu126"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
ROCM_INDEX = "https://download.pytorch.org/whl/rocm6.4"

# (system, machine) -> its choices, the fallback default first. Download sizes: torch's wheel
# plus timm, torchvision, OpenCV, Pillow and the small helpers (~80 MB); PyPI sizes for torch
# 2.13.0 / 2.2.2 (Intel Macs) from PyPI's file list, the CPU build from its wheel, the Linux CUDA
# build measured with pip; the PyTorch CUDA/ROCm builds are estimates (their index is not
# reachable where this was written).
TORCH_BUILDS: dict[tuple[str, str], tuple[TorchBuild, ...]] = {
    ("windows", "x86_64"): (
        TorchBuild("CPU", "CPU (PyPI)", PYPI_INDEX, "PyPI",
                   "PyPI's Windows torch: runs on the CPU only", "about 0.2 GB download, 1 GB on disk"),
        TorchBuild("CUDA", "NVIDIA CUDA 12.6", CUDA12_INDEX, "PyTorch's CUDA 12.6 index",
                   "For NVIDIA GPUs (driver 528 or newer); also runs on the CPU",
                   "about 2.5-3 GB download, 5-6 GB on disk (estimate)", gpu="nvidia"),
    ),
    ("linux", "x86_64"): (
        TorchBuild("CPU", "CPU", CPU_INDEX, "PyTorch's CPU index",
                   "Runs on the CPU only: the smallest download", "about 0.3 GB download, 1 GB on disk"),
        TorchBuild("CUDA", "NVIDIA CUDA (PyPI)", PYPI_INDEX, "PyPI",
                   "PyPI's Linux torch with its CUDA libraries, for NVIDIA GPUs; also runs on the CPU",
                   "about 2.9 GB download, 5.2 GB on disk", gpu="nvidia"),
        TorchBuild("ROCM", "AMD ROCm 6.4", ROCM_INDEX, "PyTorch's ROCm 6.4 index",
                   "For AMD GPUs supported by ROCm; also runs on the CPU",
                   "about 5 GB download, over 10 GB on disk (estimate)", gpu="amd"),
    ),
    ("linux", "aarch64"): (
        TorchBuild("CPU", "CPU", CPU_INDEX, "PyTorch's CPU index",
                   "Runs on the CPU only", "about 0.3 GB download, 1 GB on disk (estimate)"),
        TorchBuild("CUDA", "NVIDIA CUDA (PyPI)", PYPI_INDEX, "PyPI",
                   "PyPI's ARM Linux torch (CUDA for NVIDIA GPUs); also runs on the CPU",
                   "about 0.5 GB download plus its CUDA libraries", gpu="nvidia"),
    ),
    ("macos", "arm64"): (
        TorchBuild("MPS", "Apple Silicon (PyPI)", PYPI_INDEX, "PyPI",
                   "PyPI's macOS torch: Apple GPU (Metal) and CPU", "about 0.2 GB download, 0.6 GB on disk",
                   gpu="apple"),
    ),
    ("macos", "x86_64"): (
        TorchBuild("CPU", "Intel Mac CPU (PyPI)", PYPI_INDEX, "PyPI",
                   "torch 2.2.2, the last release PyTorch built for Intel Macs: CPU only",
                   "about 0.25 GB download, 0.6 GB on disk"),
    ),
}


def builds_for(plat: Platform) -> tuple[TorchBuild, ...]:
    """The installer's choices on ``plat`` (empty: no supported torch there, see ``unsupported_reason``)."""
    if unsupported_reason(plat) is not None:
        return ()
    return TORCH_BUILDS.get((plat.system, plat.machine), ())


def unsupported_reason(plat: Platform) -> str | None:
    """Why no torch the add-on supports installs on ``plat`` (said before any download), or None."""
    key = (plat.system, plat.machine)
    if key == ("macos", "x86_64") and plat.python >= (3, 13):
        return (f"No torch for Intel Macs with Python {plat.python[0]}.{plat.python[1]}: PyTorch's last Intel Mac "
                "release (2.2.2) is built for Python up to 3.12, i.e. Blender 4.2-5.0. Depth map files "
                "still import without torch")
    if key not in TORCH_BUILDS:
        return (f"No torch build is known for {plat.label}: install torch and timm into Blender's Python by "
                "hand (docs/blender.md). Depth map files still import without torch")
    return None


def detect_gpu(plat: Platform | None = None) -> str | None:
    """"nvidia", "amd" or "apple" when this machine shows such a GPU without importing anything, else None."""
    plat = plat or current_platform()
    if plat.system == "macos":
        return "apple" if plat.machine == "arm64" else None
    if plat.system == "linux":
        if os.path.exists("/proc/driver/nvidia/version"):
            return "nvidia"
        if os.path.exists("/dev/kfd"):  # the ROCm kernel driver's device
            return "amd"
        return None
    if plat.system == "windows":
        system_root = os.environ.get("SystemRoot", r"C:\Windows")
        if shutil.which("nvidia-smi") or os.path.exists(os.path.join(system_root, "System32", "nvidia-smi.exe")):
            return "nvidia"
    return None


def default_build(plat: Platform | None = None, gpu: str | None = None) -> TorchBuild | None:
    """The build for this platform's GPU if it has one the table knows, else the platform's first."""
    plat = plat or current_platform()
    builds = builds_for(plat)
    if not builds:
        return None
    gpu = detect_gpu(plat) if gpu is None else gpu
    return next((build for build in builds if build.gpu is not None and build.gpu == gpu), builds[0])


def get_build(plat: Platform, build_id: str) -> TorchBuild:
    for build in builds_for(plat):
        if build.id == build_id:
            return build
    raise DependencyInstallError(f"the torch build {build_id!r} is not offered on {plat.label}; pick another one")


# -----------------------------------------------------------------------------
# Where the packages live


def dependencies_base() -> Path:
    """Per-user folder for the add-on's data outside Blender's extension folders (not created)."""
    override = os.environ.get(DEPS_DIR_ENV)
    if override:
        return Path(override)
    if sys.platform == "win32":  # local, not roaming: gigabytes must not follow a roaming profile
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "depth_addon"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "depth_addon"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "depth_addon"


def dependencies_dir(python: tuple[int, int] | None = None) -> Path:
    """Where the installer puts torch + timm for this Python version, e.g. ``.../depth_addon/py311``."""
    major, minor = python or sys.version_info[:2]
    return dependencies_base() / f"py{major}{minor}"


# -----------------------------------------------------------------------------
# What is importable


_missing: tuple[str, ...] | None = None


def missing_modules(refresh: bool = False) -> tuple[str, ...]:
    """The modules a network run needs that Python cannot find, without importing them (cached)."""
    global _missing
    if _missing is None or refresh:
        importlib.invalidate_caches()
        _missing = tuple(name for name in NETWORK_MODULES if _find(name) is None)
    return _missing


def _find(name: str):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a broken half-install
        return None


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def have_pip() -> bool:
    return _find("pip") is not None


def package_names(modules: Iterable[str]) -> str:
    """Import names as what to install, e.g. ("torch", "cv2") -> "torch and OpenCV"."""
    names = {"cv2": "OpenCV", "PIL": "Pillow"}
    listed = [names.get(module, module) for module in modules]
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]


def missing_message(missing: tuple[str, ...] | None = None) -> str:
    missing = missing_modules() if missing is None else missing
    verb = "are" if len(missing) > 1 else "is"
    return (f"{package_names(missing)} {verb} not installed in Blender's Python: install them from "
            "Edit > Preferences > Add-ons > Depth Addon (a depth map file imports without them)")


_added: list[str] = []


def add_site_packages(path: str | os.PathLike) -> bool:
    """Append ``path`` to ``sys.path`` if it exists and is not there yet; True if added."""
    path = os.fspath(path)
    if not os.path.isdir(path) or path in sys.path:
        return False
    sys.path.append(path)
    _added.append(path)
    importlib.invalidate_caches()
    return True


def remove_site_packages(path: str | os.PathLike) -> None:
    path = os.fspath(path)
    while path in sys.path:
        sys.path.remove(path)
    if path in _added:
        _added.remove(path)


def remove_added_site_packages() -> None:
    """Undo every ``add_site_packages`` (the add-on is being unregistered)."""
    while _added:
        remove_site_packages(_added[-1])


# -----------------------------------------------------------------------------
# The installer's steps (run by InstallJob, below)


def probe_index(build: TorchBuild, timeout: float = 20.0) -> None:
    """Fail at once, naming the index, when ``build``'s index does not answer (no pip retries for minutes)."""
    url = f"{build.index_url.rstrip('/')}/torch/"
    request = urllib.request.Request(url, headers={"User-Agent": "depth_addon installer"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DependencyInstallError(
            f"{build.index_name} ({build.index_url}) cannot be reached ({reason}); nothing was installed. "
            "Check the internet connection (and a proxy), or pick another torch build") from exc


def pip_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for pip: no user pip configuration (no extra index can sneak in), no user site."""
    env = {key: value for key, value in (os.environ if base is None else base).items()
           if not key.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _pip(python: str) -> list[str]:
    return [python, "-m", "pip", "--no-input", "--retries", "2", "--timeout", "30"]


def resolve_torch_command(build: TorchBuild, report: str | os.PathLike, python: str = sys.executable,
                          requirements: Sequence[Requirement] = REQUIREMENTS) -> list[str]:
    """pip resolving torch + torchvision on the chosen index alone (a dry run writing a JSON report)."""
    specs = [req.range_spec for req in requirements if req.distribution in TORCH_PACKAGES]
    return [*_pip(python), "install", "--dry-run", "--ignore-installed", "--no-deps", "--only-binary", ":all:",
            "--report", os.fspath(report), "--index-url", build.index_url, *specs]


def install_command(build: TorchBuild, target: str | os.PathLike, torch_pins: Sequence[str],
                    constraints: str | os.PathLike, python: str = sys.executable,
                    requirements: Sequence[Requirement] = REQUIREMENTS, pypi: str | None = None) -> list[str]:
    """pip installing everything into ``target``: torch + torchvision exactly as resolved on the chosen
    index (their local version label, e.g. ``+cpu``, exists on no other index), the rest in range.

    ``constraints`` pins numpy to Blender's own version (``numpy_constraint``).
    """
    pypi = pypi or PYPI_INDEX
    others = [req.range_spec for req in requirements if req.distribution not in TORCH_PACKAGES]
    indexes = ["--index-url", build.index_url]
    if build.index_url != pypi:  # timm, OpenCV, Pillow and torch's helpers come from PyPI
        indexes = ["--index-url", pypi, "--extra-index-url", build.index_url]
    return [*_pip(python), "install", "--upgrade", "--target", os.fspath(target), "--only-binary", ":all:",
            "--progress-bar", "off", *indexes, "-c", os.fspath(constraints), *torch_pins, *others]


def numpy_constraint(numpy_version: str | None = None) -> str:
    """Constraint-file text pinning numpy to the one Blender ships (pip must not bring another)."""
    if numpy_version is None:
        import numpy

        numpy_version = numpy.__version__
    return f"numpy=={numpy_version}\n"


def pins_from_report(report: dict, build: TorchBuild) -> list[str]:
    """``torch==<version>`` ... for what pip resolved; raises unless each came from ``build``'s index."""
    pins = []
    for item in report.get("install", []):
        name = item["metadata"]["name"].lower()
        if name not in TORCH_PACKAGES:
            continue
        url = item.get("download_info", {}).get("url", "")
        host = build.index_url.split("/")[2]
        if host not in url and not (build.index_url == PYPI_INDEX and "pythonhosted.org" in url):
            raise DependencyInstallError(f"pip offered {name} from {url}, not from {build.index_name}; "
                                         "nothing was installed")
        pins.append(f"{name}=={item['metadata']['version']}")
    found = {pin.split("==")[0] for pin in pins}
    if found != set(TORCH_PACKAGES):
        raise DependencyInstallError(f"{build.index_name} has no {' / '.join(sorted(set(TORCH_PACKAGES) - found))} "
                                     "for this platform and Python; nothing was installed")
    return pins


def drop_numpy(target: Path) -> list[str]:
    """Remove a numpy copy from ``target`` (Blender's own is the one to use); the names removed."""
    removed = []
    for entry in sorted(target.glob("numpy*")):
        if entry.name == "numpy" or entry.name == "numpy.libs" or entry.name.startswith("numpy-"):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            removed.append(entry.name)
    return removed


# -----------------------------------------------------------------------------
# The installer: pip in a subprocess, run as a ui.jobs.Job

class CommandJob(Job):
    """Run commands one after another (a subprocess each), keeping their output lines.

    ``result``: the combined output. A non-zero exit raises ``RuntimeError`` with the last
    lines; cancelling terminates the running process.
    """

    title = "Install"

    def __init__(self, commands: Sequence[Sequence[str]], env: dict[str, str] | None = None) -> None:
        super().__init__()
        self.commands = [list(cmd) for cmd in commands]
        self.env = env
        self.lines: list[str] = []

    def work(self) -> str:
        for index, cmd in enumerate(self.commands):
            self.check_cancel()
            self.report(index / len(self.commands), f"running {Path(cmd[0]).name} {' '.join(cmd[1:4])} ...")
            self._run_one(cmd, index)
        return "\n".join(self.lines)

    def _run_one(self, cmd: list[str], index: int | None) -> None:
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=self.env, bufsize=1)
        watcher = threading.Thread(target=self._terminate_on_cancel, args=(process,), daemon=True)
        watcher.start()
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            if line:
                self.lines.append(line)
                self.report(None, line[-160:])
        code = process.wait()
        self.check_cancel()
        if code != 0:
            tail = "\n".join(self.lines[-15:])
            raise RuntimeError(f"{' '.join(cmd[:4])} ... exited with status {code}:\n{tail}")
        if index is not None:
            self.report((index + 1) / len(self.commands), None)

    def _terminate_on_cancel(self, process: subprocess.Popen) -> None:
        while process.poll() is None:
            if self._cancel.wait(0.2):
                process.terminate()
                return


class InstallJob(CommandJob):
    """Install torch + timm for ``build`` into ``target`` (``dependencies_dir()``); ``result``: ``target``.

    Steps: probe the chosen index (one clear error when unreachable), resolve torch + torchvision
    on that index alone, install everything into ``<target>.partial`` with numpy pinned to
    Blender's, drop pip's numpy copy, then swap the folder in, so a failed or cancelled install
    leaves a working one as it was.
    """

    title = "Installing torch"

    def __init__(self, build, target: str | os.PathLike, python: str = sys.executable,
                 numpy_version: str | None = None, have_pip: bool = True, pypi_index: str | None = None) -> None:
        super().__init__([], env=pip_environment())
        self.build = build
        self.target = Path(target)
        self.python = python
        self.numpy_version = numpy_version
        self.have_pip = have_pip
        self.pypi_index = pypi_index
        self.removed_numpy: list[str] = []

    def work(self) -> Path:
        import json

        self.report(0.02, f"checking {self.build.index_name} ({self.build.index_url})")
        probe_index(self.build)
        self.check_cancel()
        partial = self.target.with_name(self.target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        if not self.have_pip:
            self._step(0.05, [self.python, "-m", "ensurepip", "--upgrade"], "installing pip")
        report = partial / "torch-report.json"
        self._step(0.1, resolve_torch_command(self.build, report, self.python),
                   f"finding torch on {self.build.index_name}")
        pins = pins_from_report(json.loads(report.read_text()), self.build)
        report.unlink()
        constraints = partial / "numpy-constraint.txt"
        constraints.write_text(numpy_constraint(self.numpy_version))
        self._step(0.2, install_command(self.build, partial, pins, constraints, self.python,
                                                     pypi=self.pypi_index),
                   f"downloading {' '.join(pins)} ({self.build.download})")
        constraints.unlink()
        self.removed_numpy = drop_numpy(partial)
        self.check_cancel()
        self.report(0.98, f"moving the packages into {self.target}")
        _replace_folder(partial, self.target)
        self.report(1.0, "installed")
        return self.target

    def _step(self, fraction: float, cmd: list[str], message: str) -> None:
        self.check_cancel()
        self.report(fraction, message)
        self._run_one(cmd, None)

    def _run_one(self, cmd: list[str], index: int | None) -> None:
        try:
            super()._run_one(cmd, index)
        except RuntimeError as exc:
            raise self._failure(exc) from exc

    def _failure(self, exc: RuntimeError):
        """One line for the status bar: pip's own error (its whole output stays in ``lines``)."""
        errors = [line for line in self.lines if line.startswith("ERROR")] or self.lines[-1:] or [str(exc)]
        return DependencyInstallError(f"pip failed installing {self.build.label} torch from "
                                           f"{self.build.index_name} ({errors[-1]}); nothing was changed")


def _replace_folder(new: Path, target: Path) -> None:
    """Put ``new`` where ``target`` is; the old one is deleted (on Windows, files in use may stay behind)."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)
