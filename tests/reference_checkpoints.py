"""The deterministic reference checkpoints the parity tests and the inference benchmark load.

``reference_checkpoint(model_type)`` rebuilds, with ../shared/midas_reference/make_checkpoint.py,
the checkpoint the official code was run with (MiDaS or Depth Anything V2 reference data) and
caches it. No pytest here: scripts/bench_inference.py uses it too.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MIDAS_REFERENCE = SHARED / "midas_reference"
DAV2_REFERENCE = SHARED / "dav2_reference"
REFERENCE_FOLDERS = (MIDAS_REFERENCE, DAV2_REFERENCE)
PARTIAL_GRACE_S = 86400  # a .partial younger than this may belong to a run still writing it


def reference_npz(model_type: str) -> Path:
    """The official reference data of ``model_type``; FileNotFoundError if there is none."""
    for folder in REFERENCE_FOLDERS:
        if (folder / f"{model_type}.npz").is_file():
            return folder / f"{model_type}.npz"
    raise FileNotFoundError(f"no reference data for {model_type} in {' or '.join(map(str, REFERENCE_FOLDERS))}")


def cache_folder() -> Path:
    return Path(os.environ.get("DEPTH_ADDON_TEST_CACHE", Path(tempfile.gettempdir()) / "depth_addon_test_cache"))


def content_key(npz: Path) -> str:
    """What the rebuilt checkpoint holds, as a short hash of its keys, shapes and per-tensor sha256.

    Types whose checkpoints are identical (the Depth Anything V2 metric types and their relative
    twins) share one cache file; a changed reference gives a new key whatever its mtime.
    """
    with np.load(npz) as ref:
        parts = [ref["sd_keys"].tobytes(), str(ref["sd_shapes"]).encode(), ref["sd_sha256"].tobytes()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:20]


def _file_name(key: str, wrap: bool) -> str:
    return f"ckpt-{key}{'-wrapped' if wrap else ''}.pt"


def remove_stale(cache: Path) -> list[Path]:
    """Delete what no current reference file makes (old keys, old naming schemes, dead partial
    files), so the cache stays bounded by the current references; returns what was deleted."""
    current = set()
    for folder in REFERENCE_FOLDERS:
        for npz in folder.glob("*.npz"):
            key = content_key(npz)
            current |= {_file_name(key, False), _file_name(key, True)}
    removed = []
    for entry in cache.iterdir():
        if entry.name in current or not entry.is_file():
            continue
        if entry.name.endswith(".partial") and time.time() - entry.stat().st_mtime < PARTIAL_GRACE_S:
            continue
        entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


_cleaned: set[Path] = set()


def reference_checkpoint(model_type: str, wrap: bool = False) -> Path:
    """The cached checkpoint file for ``model_type`` (``wrap``: as ``{"model": ..., "optimizer": {}}``).

    Named by ``content_key``; stale entries are deleted once per process. Written to a temp name
    and renamed, so parallel runs never see half a file.
    """
    npz = reference_npz(model_type)
    cache = cache_folder()
    cache.mkdir(parents=True, exist_ok=True)
    if cache not in _cleaned:
        remove_stale(cache)
        _cleaned.add(cache)
    out = cache / _file_name(content_key(npz), wrap)
    if not out.is_file():
        partial = out.with_suffix(f".{os.getpid()}.partial")
        cmd = [sys.executable, str(MIDAS_REFERENCE / "make_checkpoint.py"), str(npz), str(partial)]
        subprocess.run(cmd + (["--wrap"] if wrap else []), check=True, capture_output=True)
        os.replace(partial, out)
    return out
