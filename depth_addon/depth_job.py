"""The depth work of one import run, for several photos in turn (no bpy; the UI runs it in a worker thread).

    job = DepthJob([DepthInput.from_file("a.jpg"), DepthInput.from_file("b.jpg")], Network("dpt_hybrid_384"))
    results = job(progress=lambda f, msg: ..., cancel=lambda: False)   # list of DepthResult, in order

Each photo's depth comes from ``pipeline.resolve_depth``, as for the API and the CLI; a small
``DepthCache`` keeps the last few results, so running again with other geometry settings (the
redo panel) skips the network.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import CancelledError
from .pipeline import DepthMap, Network, resolve_depth


@dataclass
class DepthInput:
    """One photo to find depth for: a file (read in the worker) or pixels copied on the main thread.

    ``rgb``: (H, W, 3) uint8, top row first (a file's pixels are filled in by the worker).
    ``image_name`` names the Image datablock the pixels came from (the build textures with it).
    ``depth``: the depth file's values, when the main thread read them already (with Blender).
    """

    label: str
    path: str | None = None
    rgb: np.ndarray | None = None
    image_name: str | None = None
    depth_path: str | None = None
    cache_key: tuple = field(default=())
    depth: np.ndarray | None = None

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
        self._items: OrderedDict[tuple, DepthMap] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key: tuple):
        with self._lock:
            depth = self._items.get(key)
            if depth is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return depth

    def put(self, key: tuple, depth) -> None:
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
    depth: DepthMap | None = None
    error: Exception | None = None
    from_cache: bool = False


class DepthJob:
    """Find depth for several photos in turn; a failing photo does not stop the others.

    network: the network for photos without a depth file; depth_kind: what the depth files hold
    (None: what each file records, else the guess from its format). Calling the job returns a
    list of ``DepthResult`` in input order; cancelling raises ``CancelledError`` out of the whole
    job, so nothing half-done is ever built.
    """

    title = "Depth"

    def __init__(self, inputs: Sequence[DepthInput], network: Network, depth_kind: str | None = None,
                 cache: DepthCache | None = DEPTH_CACHE) -> None:
        self.inputs = list(inputs)
        self.network = network
        self.depth_kind = depth_kind
        self.cache = cache
        self.networks_run = 0   # how many photos needed the network (tests, status)

    def cache_key(self, item: DepthInput) -> tuple:
        depth_file = file_key(item.depth_path) if item.depth_path else None
        network = self.network
        return (item.cache_key, depth_file, self.depth_kind, network.model, network.weights, network.precision)

    def __call__(self, progress: Callable[[float, str], None], cancel: Callable[[], bool]) -> list[DepthResult]:
        results = []
        count = len(self.inputs)
        for index, item in enumerate(self.inputs):
            _check(cancel)
            prefix = f"{item.label} ({index + 1}/{count})" if count > 1 else item.label

            def step(fraction: float, message: str, index=index, prefix=prefix) -> None:
                progress((index + fraction) / count, f"{prefix}: {message}")

            try:
                results.append(self._one(item, step, cancel))
            except CancelledError:
                raise
            except Exception as exc:  # reported per photo by the operator
                if count == 1:
                    raise
                results.append(DepthResult(item, error=exc))
        progress(1.0, "building geometry")
        return results

    def _one(self, item: DepthInput, step: Callable[[float, str], None], cancel) -> DepthResult:
        if item.rgb is None:
            from .imageio import read_image

            step(0.0, "reading image")
            item.rgb = read_image(item.path)  # here, off the main thread; the build step reuses it
        _check(cancel)
        key = self.cache_key(item)
        if self.cache is not None and (cached := self.cache.get(key)) is not None:
            step(1.0, "depth from cache")
            return DepthResult(item, depth=cached, from_cache=True)
        if item.depth_path:
            step(0.5, "reading depth map")
        found = resolve_depth(item.rgb, item.depth_path, depth_kind=self.depth_kind, depth_values=item.depth,
                              network=self.network, progress=step, cancel=cancel)
        if found.source == "network":
            self.networks_run += 1
        if self.cache is not None:
            self.cache.put(key, found)
        return DepthResult(item, depth=found)


def _check(cancel: Callable[[], bool]) -> None:
    if cancel():
        raise CancelledError("cancelled")
