"""Where MiDaS weights live on disk, and how they get there (stdlib only, no torch).

    path = ensure_weights("midas_v21_small_256", progress=lambda done, total: ...)

Cache folder, first match wins: the ``weights_dir`` argument, ``$DEPTH_ADDON_WEIGHTS_DIR``,
the default set with :func:`set_default_weights_dir` (the Blender layer sets the
preferences' Weights Folder when one is chosen), the platform user cache (``$XDG_CACHE_HOME/depth_addon/weights``
or ``~/.cache/depth_addon/weights`` on Linux, ``~/Library/Caches/depth_addon/weights`` on
macOS, ``%LOCALAPPDATA%\\depth_addon\\weights`` on Windows).

Downloads go to ``<file>.part`` and are renamed into place only once complete and verified
(size and sha256 where the model table knows them), so a cache file is never half written.
An interrupted download resumes with an HTTP Range request. ``$DEPTH_ADDON_WEIGHTS_URL_BASE``
replaces the release URL's folder (a mirror, or a local test server).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..errors import CancelledError, WeightsUnavailableError
from .registry import get_spec

WEIGHTS_DIR_ENV = "DEPTH_ADDON_WEIGHTS_DIR"
URL_BASE_ENV = "DEPTH_ADDON_WEIGHTS_URL_BASE"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 30.0
RESUME_ATTEMPTS = 3

ProgressFn = Callable[[int, "int | None"], None]
CancelFn = Callable[[], bool]

# What a non-blocking lock attempt fails with while another process holds the lock
# (flock: EWOULDBLOCK; msvcrt.locking: EACCES, or EDEADLOCK, which is EDEADLK).
_LOCK_HELD_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK})

_default_dir: Path | None = None
_file_locks: dict[Path, threading.Lock] = {}
_file_locks_guard = threading.Lock()


def set_default_weights_dir(path: str | os.PathLike | None) -> None:
    """Set (or with ``None`` clear) the folder used when no argument or env variable names one."""
    global _default_dir
    _default_dir = Path(path) if path is not None else None


def platform_cache_dir() -> Path:
    """The per-user cache folder for weights on this platform (not created)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "depth_addon" / "weights"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "depth_addon" / "weights"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "depth_addon" / "weights"


def weights_dir(override: str | os.PathLike | None = None) -> Path:
    """The weights cache folder: argument > $DEPTH_ADDON_WEIGHTS_DIR > set default > user cache."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(WEIGHTS_DIR_ENV)
    if env:
        return Path(env).expanduser()
    if _default_dir is not None:
        return _default_dir
    return platform_cache_dir()


def weights_url(model_type: str) -> str:
    """The download URL of ``model_type``'s official weights (honours $DEPTH_ADDON_WEIGHTS_URL_BASE)."""
    spec = get_spec(model_type)
    base = os.environ.get(URL_BASE_ENV)
    return f"{base.rstrip('/')}/{spec.filename}" if base else spec.url


def cached_weights(model_type: str, weights_dir: str | os.PathLike | None = None) -> Path | None:
    """The cached weights file of ``model_type``, or None if absent (or of the wrong size).

    The sha256 is checked once, at download; hashing a 1.3 GB file on every load would
    cost seconds, so here only the size is compared.
    """
    spec = get_spec(model_type)
    path = _weights_dir(weights_dir) / spec.filename
    if not path.is_file():
        return None
    if spec.size_bytes is not None and path.stat().st_size != spec.size_bytes:
        return None
    return path


def ensure_weights(
    model_type: str,
    weights_dir: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    allow_download: bool = True,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Return the path of ``model_type``'s weights, downloading them into the cache if needed.

    ``progress(done_bytes, total_bytes_or_None)`` is called while downloading; ``cancel()``
    is checked between chunks (raises CancelledError, keeping the ``.part`` for resuming).
    ``allow_download=False`` (Blender with online access off) never touches the network.
    Raises WeightsUnavailableError naming the file, its URL and the folder to put it in.
    """
    spec = get_spec(model_type)
    folder = _weights_dir(weights_dir)
    found = cached_weights(model_type, folder)
    if found is not None:
        return found
    url = weights_url(model_type)
    dest = folder / spec.filename
    if not allow_download:
        raise WeightsUnavailableError(
            f"online access is off, so the {spec.label} weights cannot be downloaded: enable "
            f"'Allow Online Access' (Blender Preferences > System > Network), or download {url} "
            f"yourself and put {spec.filename} in {folder}, or pass the weights file explicitly "
            f"(--weights FILE / weights=)"
        )
    # One download per file at a time (two clicks in Blender, two Blenders, Blender and the
    # CLI): later callers wait, still cancellable, and then find the finished file.
    with _download_lock(dest, cancel):
        found = cached_weights(model_type, folder)
        if found is not None:
            return found
        download(url, dest, size=spec.size_bytes, sha256=spec.sha256, progress=progress, cancel=cancel,
                 timeout=timeout)
    return dest


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    size: int | None = None,
    sha256: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    timeout: float = TIMEOUT_S,
    attempts: int = RESUME_ATTEMPTS,
) -> Path:
    """Download ``url`` to ``dest`` via ``dest.part``, resuming after dropped connections.

    ``sha256`` may be a full hex digest or a prefix (older MiDaS file names carry 8 hex
    digits). Content that fails the size or hash check is deleted and raises
    WeightsUnavailableError; an interrupted transfer keeps the ``.part`` and is retried with
    a Range request up to ``attempts`` times in total before giving up.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    _make_folder(dest.parent)
    last_problem = ""
    for _ in range(max(1, attempts)):
        try:
            complete = _fetch_into(url, part, size, progress, cancel, timeout)
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the open connection, kept alive as the new error's __cause__
            # A server that answers with an error will answer the same way on retry.
            raise _unavailable(url, dest, f"the server answered HTTP {exc.code} {exc.reason}") from exc
        except urllib.error.URLError as exc:
            raise _unavailable(url, dest, f"cannot reach the server ({_reason(exc.reason)})") from exc
        except (OSError, http.client.HTTPException) as exc:
            complete, last_problem = False, f"the connection broke ({_reason(exc)})"
        else:
            last_problem = "the server closed the connection before the end of the file"
        if complete:
            _verify(part, url, dest, size, sha256)
            try:
                os.replace(part, dest)
            except OSError as exc:
                raise _cannot_write(dest, exc) from exc
            return dest
    have = part.stat().st_size if part.exists() else 0
    raise _unavailable(
        url, dest, f"{last_problem}; {have:,} bytes are kept in {part.name} and the next try resumes there"
    )


def _fetch_into(url, part: Path, size, progress, cancel, timeout) -> bool:
    """One HTTP request appending to ``part``; True when the file is complete."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    if size is not None and offset == size:
        return True
    request = urllib.request.Request(url, headers={"User-Agent": "depth_addon"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            exc.close()
            # Range not satisfiable: the .part is already whole (or longer than the file).
            total = _content_range_total(exc.headers.get("Content-Range", ""))
            if total == offset:
                return True
            part.unlink()
            return False
        raise
    with response:
        if offset and (response.status != 206 or _content_range_start(response) != offset):
            offset = 0  # the server ignored Range (or sent another range): start over
        expected = _expected_length(response, offset)
        total = expected if expected is not None else size
        done = offset
        try:
            out = open(part, "ab" if offset else "wb")
        except OSError as exc:
            raise _cannot_write(part, exc) from exc
        with out:
            if progress is not None:
                progress(done, total)
            while True:
                if cancel is not None and cancel():
                    raise CancelledError(
                        f"download cancelled; {done:,} bytes are kept in {part} and the next try resumes"
                    )
                chunk = response.read(CHUNK_BYTES)
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as exc:  # disk full, not a network problem: no retry
                    raise _cannot_write(part, exc) from exc
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    # http.client returns b"" instead of raising when a connection ends early.
    return expected is None or done >= expected


def _expected_length(response, offset: int) -> int | None:
    """Total file size from Content-Range (206) or offset + Content-Length, if the server says."""
    if response.status == 206:
        total = _content_range_total(response.headers.get("Content-Range", ""))
        if total is not None:
            return total
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _content_range_start(response) -> int | None:
    """``bytes 100-199/1000`` -> 100."""
    first = response.headers.get("Content-Range", "").removeprefix("bytes ").partition("-")[0].strip()
    return int(first) if first.isdigit() else None


def _content_range_total(header: str) -> int | None:
    """``bytes 100-199/1000`` or ``bytes */1000`` -> 1000."""
    total = header.rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def _verify(part: Path, url: str, dest: Path, size: int | None, sha256: str | None) -> None:
    actual_size = part.stat().st_size
    problem = None
    if size is not None and actual_size != size:
        problem = f"it has {actual_size:,} bytes instead of {size:,}"
    elif sha256:
        digest = _sha256_file(part)
        if not digest.startswith(sha256.lower()):
            problem = f"its sha256 is {digest}, expected {sha256}"
    if problem:
        part.unlink()
        raise _unavailable(url, dest, f"the downloaded file is corrupt ({problem}) and was deleted")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _unavailable(url: str, dest: Path, problem: str) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        f"could not download {dest.name}: {problem}. Download {url} yourself and put {dest.name} "
        f"in {dest.parent}, or pass the weights file explicitly (--weights FILE / weights=)"
    )


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsUnavailableError(
            f"cannot create the weights folder {folder} ({exc.strerror or exc}); set "
            f"{WEIGHTS_DIR_ENV} to a writable folder, or pass the weights file explicitly (--weights FILE)"
        ) from exc


def _cannot_write(path: Path, exc: OSError) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        f"cannot write {path} ({exc.strerror or exc}); free some disk space or set {WEIGHTS_DIR_ENV} "
        f"to another folder, or pass the weights file explicitly (--weights FILE / weights=)"
    )


@contextlib.contextmanager
def _download_lock(dest: Path, cancel: CancelFn | None):
    """Hold ``dest``'s lock: a thread lock in this process, an OS file lock across processes.

    The OS releases a file lock when its process dies, so a crash never leaves a stale lock.
    The empty ``<file>.lock`` is removed once the weights are in place.
    """
    with _file_locks_guard:
        thread_lock = _file_locks.setdefault(dest, threading.Lock())

    def wait(try_acquire):
        while not try_acquire():
            if cancel is not None and cancel():
                raise CancelledError(f"cancelled while waiting for another download of {dest.name}")
            time.sleep(0.2)

    wait(lambda: thread_lock.acquire(blocking=False))
    try:
        _make_folder(dest.parent)
        lock_path = dest.with_name(dest.name + ".lock")
        try:
            handle = open(lock_path, "a+b")
        except OSError as exc:
            raise _cannot_write(dest.parent, exc) from exc
        with handle:
            wait(lambda: _try_lock_file(handle))
            try:
                yield
            finally:
                with contextlib.suppress(OSError):  # not locked (no file locking here); closing unlocks anyway
                    _unlock_file(handle)
        if dest.is_file():
            # Anyone still waiting on this lock file finds the finished weights once it gets it.
            with contextlib.suppress(OSError):
                lock_path.unlink()
    finally:
        thread_lock.release()


def _try_lock_file(handle) -> bool:
    """True once ``handle`` is locked, or when its file system cannot lock files at all (e.g.
    ENOLCK on some network mounts): waiting would then never end, so only the thread lock guards."""
    try:
        if os.name == "nt":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno not in _LOCK_HELD_ERRNOS
    return True


def _unlock_file(handle) -> None:
    if os.name == "nt":
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _reason(reason) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _weights_dir(override) -> Path:
    # For the functions whose ``weights_dir`` parameter hides the public function.
    return weights_dir(override)
