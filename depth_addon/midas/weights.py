"""Where model weights live on disk, and how they get there (stdlib only, no torch).

    path = ensure_weights("midas_v21_small_256", progress=lambda done, total: ...)

Cache folder, first match wins: the ``weights_dir`` argument (Blender passes the
preferences' Weights Folder when one is chosen), ``$DEPTH_ADDON_WEIGHTS_DIR``, the platform
user cache (``$XDG_CACHE_HOME/depth_addon/weights``
or ``~/.cache/depth_addon/weights`` on Linux, ``~/Library/Caches/depth_addon/weights`` on
macOS, ``%LOCALAPPDATA%\\depth_addon\\weights`` on Windows).

Downloads go to ``<file>.part`` and are renamed into place only once complete and proven to
be a checkpoint of that model type (zip / pickle structure, a ``weights_only`` load, the
table's tensor fingerprint, size and sha256 where the table knows them): a captive portal's
HTML page, an empty or cut-short body or another model's file never lands in the cache.
An interrupted download resumes with an HTTP Range request (``If-Range`` with the server's
validator recorded in ``<file>.part.json``, so a file changed on the server restarts). ``$DEPTH_ADDON_WEIGHTS_URL_BASE``
replaces the release URL's folder (a mirror, or a local test server).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from ..errors import CancelledError, CheckpointMismatchError, DependencyMissingError, WeightsUnavailableError
from .registry import ModelSpec, get_spec, licence_notice

WEIGHTS_DIR_ENV = "DEPTH_ADDON_WEIGHTS_DIR"
URL_BASE_ENV = "DEPTH_ADDON_WEIGHTS_URL_BASE"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 30.0
RESUME_ATTEMPTS = 3

ProgressFn = Callable[[int, "int | None"], None]
CancelFn = Callable[[], bool]
CheckFn = Callable[[Path], "str | None"]  # a downloaded file -> what it is instead, or None when fine

# What a non-blocking lock attempt fails with while another process holds the lock
# (flock: EWOULDBLOCK; msvcrt.locking: EACCES, or EDEADLOCK, which is EDEADLK).
_LOCK_HELD_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK})

_file_locks: dict[Path, threading.Lock] = {}
_file_locks_guard = threading.Lock()


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
    """The weights cache folder: argument > $DEPTH_ADDON_WEIGHTS_DIR > user cache."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(WEIGHTS_DIR_ENV)
    if env:
        return Path(env).expanduser()
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
                 timeout=timeout, check=lambda path: checkpoint_problem(path, spec))
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
    check: CheckFn | None = None,
) -> Path:
    """Download ``url`` to ``dest`` via ``dest.part``, resuming after dropped connections.

    ``sha256`` may be a full hex digest or a prefix (older MiDaS file names carry 8 hex
    digits). ``check(part)`` proves the complete file (None = fine, else what arrived, e.g.
    ``checkpoint_problem``). Content that fails the size, hash or check is deleted and raises
    WeightsUnavailableError saying what arrived; an interrupted transfer keeps the ``.part``
    and is retried with a Range request up to ``attempts`` times in total before giving up.
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
            raise _unavailable(url, dest, _http_problem(exc)) from exc
        except urllib.error.URLError as exc:
            raise _unavailable(url, dest, f"cannot reach the server ({_reason(exc.reason)})") from exc
        except (OSError, http.client.HTTPException) as exc:
            complete, last_problem = False, f"the connection broke ({_reason(exc)})"
        else:
            last_problem = "the server closed the connection before the end of the file"
        if complete:
            _verify(part, url, dest, size, sha256, check)
            try:
                os.replace(part, dest)
            except OSError as exc:
                raise _cannot_write(dest, exc) from exc
            _part_record(part).unlink(missing_ok=True)
            return dest
    have = part.stat().st_size if part.exists() else 0
    raise _unavailable(
        url, dest, f"{last_problem}; {have:,} bytes are kept in {part.name} and the next try resumes there"
    )


def _fetch_into(url, part: Path, size, progress, cancel, timeout) -> bool:
    """One HTTP request appending to ``part``; True when the file is complete."""
    offset = part.stat().st_size if part.exists() else 0
    record = _read_part_record(part)
    if offset and not _may_resume(part, url, size, record):
        _discard_part(part)
        offset, record = 0, {}
    if size is not None and offset == size:
        return True
    request = urllib.request.Request(url, headers={"User-Agent": "depth_addon"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
        validator = record.get("etag") or record.get("last_modified")
        if validator:  # the server sends the whole file instead if it changed since the .part began
            request.add_header("If-Range", validator)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            exc.close()
            # Range not satisfiable: the .part is already whole (or longer than the file).
            total = _content_range_total(exc.headers.get("Content-Range", ""))
            if total == offset and record.get("total") in (None, total):
                return True
            _discard_part(part)
            return False
        raise
    with response:
        if offset and (response.status != 206 or _content_range_start(response) != offset
                       or record.get("total") not in (None, _expected_length(response, offset))):
            offset = 0  # the server ignored Range, sent another range or has another file now: start over
        expected = _expected_length(response, offset)
        if not offset:
            _write_part_record(part, url, response, expected)
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


def _verify(part: Path, url: str, dest: Path, size: int | None, sha256: str | None, check: CheckFn | None) -> None:
    actual_size = part.stat().st_size
    problem = None
    if size is not None and actual_size != size:
        problem = f"it has {actual_size:,} bytes instead of {size:,}"
    elif sha256:
        digest = _sha256_file(part)
        if not digest.startswith(sha256.lower()):
            problem = f"its sha256 is {digest}, expected {sha256}"
    if problem:
        arrived = describe_non_checkpoint(part) if check is not None else None
        _discard_part(part)
        arrived = f"; the server sent {arrived}" if arrived else ""
        raise _unavailable(url, dest, f"the downloaded file is corrupt ({problem}{arrived}) and was deleted")
    arrived = check(part) if check is not None else None
    if arrived:
        _discard_part(part)
        raise _unavailable(url, dest, f"the server sent {arrived}; it was deleted")


# --- proving a download is a checkpoint -------------------------------------------------------

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80  # pickle protocol 2+ opcode: how torch's legacy (pre-zip) format starts
_SNIFF_BYTES = 1024


def describe_non_checkpoint(path: Path) -> str | None:
    """What ``path`` holds if it cannot be a PyTorch checkpoint (``"an HTML page"``), else None.

    Only looks at the structure (stdlib, cheap): torch saves a zip with a ``data.pkl`` inside
    (since torch 1.6) or, in the legacy format, a pickle stream. None does not prove the file
    loads; ``checkpoint_problem`` does that.
    """
    size = path.stat().st_size
    if size == 0:
        return "an empty file"
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in text:
        return "an HTML page, not a checkpoint"
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return f"a zip archive cut short or damaged ({size:,} bytes), not a whole checkpoint"
        if not any(name.endswith("data.pkl") for name in names):
            return "a zip archive without PyTorch data, not a checkpoint"
        return None
    if head[0] == _PICKLE_PROTO:
        return None
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return f"{size:,} bytes of text, not a checkpoint"
    return f"{size:,} bytes that are not a PyTorch checkpoint (neither its zip nor its pickle format)"


def checkpoint_problem(path: Path, spec: ModelSpec) -> str | None:
    """None if ``path`` is a checkpoint for ``spec``'s model type, else what it is instead.

    Checks the structure, then (where torch is installed) loads it with ``weights_only=True``
    and compares its tensor count and value count with the model table's fingerprint.
    """
    arrived = describe_non_checkpoint(path)
    if arrived:
        return arrived
    try:
        from .model import matching_model_types, read_checkpoint
    except DependencyMissingError:
        return None  # no torch here (Blender before the installer ran): the structure check is all
    try:
        state_dict = read_checkpoint(path)
    except CheckpointMismatchError as exc:
        return f"a file PyTorch cannot load as a checkpoint ({exc})"
    if spec.tensor_count is None or spec.value_count is None:
        return None
    tensors = len(state_dict)
    values = sum(int(t.numel()) for t in state_dict.values())
    if (tensors, values) == (spec.tensor_count, spec.value_count):
        return None
    others = matching_model_types(state_dict)
    if others:
        return f"a checkpoint for {others[0]}, not for {spec.name}"
    return (f"a checkpoint with {tensors} tensors and {values:,} values, not the {spec.tensor_count} and "
            f"{spec.value_count:,} of {spec.name}")


# --- the .part file's provenance --------------------------------------------------------------


def _part_record(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _read_part_record(part: Path) -> dict:
    try:
        record = json.loads(_part_record(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write_part_record(part: Path, url: str, response, total: int | None) -> None:
    """Remember where the new ``.part`` comes from, so a resume never appends another file to it."""
    record = {"url": url, "etag": response.headers.get("ETag"),
              "last_modified": response.headers.get("Last-Modified"), "total": total}
    with contextlib.suppress(OSError):  # without a record the .part is still resumed, checked by structure
        _part_record(part).write_text(json.dumps(record), encoding="utf-8")


def _may_resume(part: Path, url: str, size: int | None, record: dict) -> bool:
    """Whether appending to ``part`` can give ``url``'s file: same source, not too long, a checkpoint's start."""
    have = part.stat().st_size
    if record.get("url") not in (None, url) or (size is not None and have > size):
        return False
    if record.get("total") is not None and have > record["total"]:
        return False
    with open(part, "rb") as fh:
        head = fh.read(len(_ZIP_MAGIC))
    return head.startswith(_ZIP_MAGIC[: len(head)]) or head[:1] == bytes([_PICKLE_PROTO])


def _discard_part(part: Path) -> None:
    part.unlink(missing_ok=True)
    _part_record(part).unlink(missing_ok=True)


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


def _http_problem(exc: urllib.error.HTTPError) -> str:
    """One line for an HTTP error (urllib's own text for a redirect loop has three)."""
    if 300 <= exc.code < 400:
        return f"the server redirects in a loop or without a target (HTTP {exc.code})"
    return f"the server answered HTTP {exc.code} {' '.join(str(exc.reason).split())}"


def _reason(reason) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _weights_dir(override) -> Path:
    # For the functions whose ``weights_dir`` parameter hides the public function.
    return weights_dir(override)


def resolve_weights(
    model_type: str,
    weights: str | os.PathLike | None = None,
    *,
    weights_dir: str | os.PathLike | None = None,
    allow_download: bool = True,
    on_bytes: Callable[[int, int | None], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Path:
    """The weights file ``model_type`` loads: ``weights`` if given (it must exist), else the one in
    the weights folder, downloaded first if it is missing and ``allow_download``.

    on_note(text) hears of a non-commercial licence before its weights are downloaded.
    Raises WeightsUnavailableError naming the file and the fix.
    """
    if weights is not None:
        checkpoint = Path(weights).expanduser()
        if not checkpoint.is_file():
            raise WeightsUnavailableError(
                f"weights file not found: {checkpoint}; pass the official weights file of {model_type}"
            )
        return checkpoint
    notice = licence_notice(get_spec(model_type))
    if notice is not None and on_note is not None and cached_weights(model_type, weights_dir) is None:
        on_note(notice)  # before the download starts
    return ensure_weights(model_type, weights_dir, progress=on_bytes, cancel=cancel, allow_download=allow_download)
