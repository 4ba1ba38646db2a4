"""Long work off Blender's main thread (no bpy here).

A ``Job`` runs ``work()`` either in a daemon thread (``start()``, polled by a modal
operator's timer) or in the calling thread (``run_sync()``, for background mode and
scripts). Either way progress, the cancel flag, the result and the error live on the job
behind a lock, so the main thread can read them at any time. Job code never touches bpy
data: operators copy what a job needs (paths, pixels, settings) before starting it and
turn its result into datablocks afterwards, on the main thread.

``ACTIVE`` maps a key ("depth", "download:<model>", "install") to the running job so
panels can draw its progress and a cancel button.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CancelledError

ACTIVE: dict[str, Job] = {}


class Job:
    """Base class: subclasses implement ``work()`` and call ``self.report()`` / ``self.check_cancel()``."""

    title = "Working"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._fraction = 0.0
        self._message = ""
        self._thread: threading.Thread | None = None
        self.result = None
        self.error: BaseException | None = None
        self.error_traceback = ""
        self._started: float | None = None

    # -- called by the worker ------------------------------------------------------
    def work(self):
        raise NotImplementedError

    def report(self, fraction: float | None, message: str | None = None) -> None:
        """Thread-safe progress update; ``None`` keeps the current value."""
        with self._lock:
            if fraction is not None:
                self._fraction = min(max(float(fraction), 0.0), 1.0)
            if message is not None:
                self._message = message

    def cancelled(self) -> bool:
        """The ``cancel()`` callback handed to the pipeline and the weights manager."""
        return self._cancel.is_set()

    def check_cancel(self) -> None:
        if self._cancel.is_set():
            raise CancelledError("cancelled")

    # -- called by the main thread -------------------------------------------------
    def start(self) -> Job:
        self._thread = threading.Thread(target=self._run, name=f"depth_addon {self.title}", daemon=True)
        self._thread.start()
        return self

    def run_sync(self) -> Job:
        """Run in the calling thread (background mode, scripts); errors end up in ``self.error``."""
        self._run()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def progress(self) -> tuple[float, str]:
        with self._lock:
            return self._fraction, self._message

    @property
    def was_cancelled(self) -> bool:
        return self._cancel.is_set() or isinstance(self.error, CancelledError)

    @property
    def elapsed(self) -> float:
        """Seconds since the job started (0 before)."""
        return 0.0 if self._started is None else time.perf_counter() - self._started

    def _run(self) -> None:
        self._started = time.perf_counter()
        try:
            self.check_cancel()
            result = self.work()
            self.check_cancel()  # cancel always wins: a result finished after Esc is never delivered
            self.result = result
        except Exception as exc:  # handed to the main thread, which reports it
            self.error = exc
            self.error_traceback = traceback.format_exc()
        finally:
            self._done.set()


# -----------------------------------------------------------------------------
# Depth estimation


@dataclass
class DepthInput:
    """One image to estimate depth for: a file (read in the worker) or pixels copied on the main thread.

    ``rgb``: (H, W, 3) uint8, top row first (a file's pixels are filled in by the worker).
    ``image_name`` names the Image datablock the pixels came from (the build textures with it).
    """

    label: str
    path: str | None = None
    rgb: np.ndarray | None = None
    image_name: str | None = None
    depth_path: str | None = None
    cache_key: tuple = field(default=())
    depth: np.ndarray | None = None   # the depth file's values, when the main thread read it already

    @classmethod
    def from_file(cls, path: str | os.PathLike, depth_path: str | None = None) -> DepthInput:
        path = os.path.abspath(os.fspath(path))
        return cls(label=os.path.basename(path), path=path, depth_path=depth_path, cache_key=file_key(path))

    @classmethod
    def from_pixels(cls, name: str, rgb: np.ndarray, depth_path: str | None = None) -> DepthInput:
        digest = hashlib.blake2b(np.ascontiguousarray(rgb).data, digest_size=16).hexdigest()
        return cls(label=name, rgb=rgb, image_name=name, depth_path=depth_path,
                   cache_key=("pixels", rgb.shape, digest))


def file_key(path: str) -> tuple:
    """Identity of a file's current contents, cheap to compute (no hashing)."""
    try:
        stat = os.stat(path)
    except OSError:
        return ("file", path)  # missing: the worker raises a proper ImageReadError
    return ("file", path, stat.st_size, stat.st_mtime_ns)


class DepthCache:
    """The last few depth maps, so re-running with other geometry settings (redo panel) skips the network."""

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key: tuple) -> np.ndarray | None:
        with self._lock:
            depth = self._items.get(key)
            if depth is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return depth

    def put(self, key: tuple, depth: np.ndarray) -> None:
        with self._lock:
            self._items[key] = depth
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


DEPTH_CACHE = DepthCache()


@dataclass
class DepthResult:
    input: DepthInput
    depth: np.ndarray | None = None   # (H, W) float32 inverse depth, or what depth_path holds
    error: Exception | None = None
    from_cache: bool = False


class DepthJob(Job):
    """Estimate depth for several images in turn; a failing image does not stop the others.

    ``result``: list of ``DepthResult`` in input order. Cancelling raises ``CancelledError``
    out of the whole job (``error``), so nothing half-done is ever built.
    """

    title = "Depth"

    def __init__(self, inputs: Sequence[DepthInput], model: str, weights: str | None = None,
                 device: str = "auto", precision: str = "fp32", weights_dir: str | None = None,
                 allow_download: bool = True, cache: DepthCache | None = DEPTH_CACHE) -> None:
        super().__init__()
        self.inputs = list(inputs)
        self.model = model
        self.weights = weights or None
        self.device = device
        self.precision = precision
        self.weights_dir = weights_dir or None
        self.allow_download = allow_download
        self.cache = cache
        self.networks_run = 0   # how many images needed the network (tests, status)

    def cache_key(self, item: DepthInput) -> tuple:
        depth_file = file_key(item.depth_path) if item.depth_path else None
        return (item.cache_key, depth_file, self.model, self.weights, self.precision)

    def work(self) -> list[DepthResult]:
        results = []
        count = len(self.inputs)
        for index, item in enumerate(self.inputs):
            self.check_cancel()
            prefix = f"{item.label} ({index + 1}/{count})" if count > 1 else item.label

            def step(fraction: float, message: str, index=index, prefix=prefix) -> None:
                self.report((index + fraction) / count, f"{prefix}: {message}")

            try:
                results.append(self._one(item, step))
            except CancelledError:
                raise
            except Exception as exc:  # reported per image by the operator
                if count == 1:
                    raise
                results.append(DepthResult(item, error=exc))
        self.report(1.0, "building geometry")
        return results

    def _one(self, item: DepthInput, step: Callable[[float, str], None]) -> DepthResult:
        if item.rgb is None:
            from ..imageio import read_image

            step(0.0, "reading image")
            item.rgb = read_image(item.path)  # here, off the main thread; the build step reuses it
        self.check_cancel()
        key = self.cache_key(item)
        if self.cache is not None and (cached := self.cache.get(key)) is not None:
            step(1.0, "depth from cache")
            return DepthResult(item, depth=cached, from_cache=True)
        if item.depth is not None:
            depth = item.depth
        elif item.depth_path:
            from ..imageio import read_depth

            step(0.5, "reading depth map")
            depth = read_depth(item.depth_path)
        else:
            from ..pipeline import estimate_depth

            depth = estimate_depth(
                item.rgb, model_type=self.model, weights=self.weights, device=self.device,
                precision=self.precision, progress=step, cancel=self.cancelled,
                weights_dir=self.weights_dir, allow_download=self.allow_download,
            )
            self.networks_run += 1
        if self.cache is not None:
            self.cache.put(key, depth)
        return DepthResult(item, depth=depth)


# -----------------------------------------------------------------------------
# Weights download


class DownloadJob(Job):
    """Fetch one model's official weights into the weights folder; ``result`` is the file's path."""

    title = "Download"

    def __init__(self, model: str, weights_dir: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.weights_dir = weights_dir or None

    def work(self) -> Path:
        from ..midas.weights import ensure_weights

        def downloaded(done: int, total: int | None) -> None:
            mib = done / 2**20
            if total:
                self.report(done / total, f"{self.model}: {mib:.0f}/{total / 2**20:.0f} MiB")
            else:
                self.report(None, f"{self.model}: {mib:.0f} MiB")

        self.report(0.0, f"{self.model}: connecting")
        return ensure_weights(self.model, weights_dir=self.weights_dir, progress=downloaded,
                              cancel=self.cancelled, allow_download=True)


# -----------------------------------------------------------------------------
# Installing torch + timm into Blender's Python


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
    """Install torch + timm for ``build`` into ``target`` (``deps.dependencies_dir()``); ``result``: ``target``.

    Steps: probe the chosen index (one clear error when unreachable), resolve torch + torchvision
    on that index alone, install everything into ``<target>.partial`` with numpy pinned to
    Blender's, drop pip's numpy copy, then swap the folder in, so a failed or cancelled install
    leaves a working one as it was.
    """

    title = "Installing torch"

    def __init__(self, build, target: str | os.PathLike, python: str = sys.executable,
                 numpy_version: str | None = None, have_pip: bool = True, pypi_index: str | None = None) -> None:
        from . import deps

        super().__init__([], env=deps.pip_environment())
        self.build = build
        self.target = Path(target)
        self.python = python
        self.numpy_version = numpy_version
        self.have_pip = have_pip
        self.pypi_index = pypi_index
        self.removed_numpy: list[str] = []

    def work(self) -> Path:
        import json

        from . import deps

        self.report(0.02, f"checking {self.build.index_name} ({self.build.index_url})")
        deps.probe_index(self.build)
        self.check_cancel()
        partial = self.target.with_name(self.target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        if not self.have_pip:
            self._step(0.05, [self.python, "-m", "ensurepip", "--upgrade"], "installing pip")
        report = partial / "torch-report.json"
        self._step(0.1, deps.resolve_torch_command(self.build, report, self.python),
                   f"finding torch on {self.build.index_name}")
        pins = deps.pins_from_report(json.loads(report.read_text()), self.build)
        report.unlink()
        constraints = partial / "numpy-constraint.txt"
        constraints.write_text(deps.numpy_constraint(self.numpy_version))
        self._step(0.2, deps.install_command(self.build, partial, pins, constraints, self.python,
                                                     pypi=self.pypi_index),
                   f"downloading {' '.join(pins)} ({self.build.download})")
        constraints.unlink()
        self.removed_numpy = deps.drop_numpy(partial)
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
        from . import deps

        errors = [line for line in self.lines if line.startswith("ERROR")] or self.lines[-1:] or [str(exc)]
        return deps.DependencyInstallError(f"pip failed installing {self.build.label} torch from "
                                           f"{self.build.index_name} ({errors[-1]}); nothing was changed")


def _replace_folder(new: Path, target: Path) -> None:
    """Put ``new`` where ``target`` is; the old one is deleted (on Windows, files in use may stay behind)."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)
