"""Weights cache and download, against a real HTTP server on 127.0.0.1 (never a real host)."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO_ROOT
from depth_addon.errors import CancelledError, WeightsUnavailableError
from depth_addon.midas import weights
from depth_addon.midas.registry import get_spec

# torch tier: the payloads are real torch checkpoints, since downloads are proven to be one.
pytestmark = pytest.mark.torch

MODEL = "midas_v21_small_256"
FILENAME = get_spec(MODEL).filename
PAYLOAD_VALUES = 3 * weights.CHUNK_BYTES // 4 + 3000


def _checkpoint_bytes(values: int, start: int = 0) -> bytes:
    """A real (zip-format) torch checkpoint of one float tensor: ~4 bytes per value."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({"weight": torch.arange(start, start + values, dtype=torch.float32)}, buffer)
    return buffer.getvalue()


# A real checkpoint (downloads are proven to be one), with the table's fingerprint made to fit it.
PAYLOAD = _checkpoint_bytes(PAYLOAD_VALUES)
PAYLOAD_SPEC = dataclasses.replace(get_spec(MODEL), tensor_count=1, value_count=PAYLOAD_VALUES)


class WeightsServer:
    """A loopback server for one payload, with switchable faults.

    ``cut_after``: for each of the next requests, bytes sent before the connection is
    dropped (the headers still promise the whole body). ``corrupt``: flip the body's bytes.
    ``ignore_range``: answer Range requests with the whole file (200). ``stall_s``: send
    the headers, then wait before the body. ``etag``: sent with each answer; an ``If-Range``
    naming another gets the whole file (RFC 9110). ``redirect``: answer 302 to the same URL.
    """

    def __init__(self, payload: bytes):
        self.payload = payload
        self.path = f"/w/{FILENAME}"
        self.requests: list[str | None] = []  # the Range header of each request
        self.cut_after: list[int] = []
        self.corrupt = False
        self.ignore_range = False
        self.stall_s = 0.0
        self.etag: str | None = None
        self.redirect = False
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append(self.headers.get("Range"))
                if self.path != outer.path:
                    self.send_error(404, "Not Found")
                    return
                if outer.redirect:
                    self.send_response(302)
                    self.send_header("Location", outer.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = outer.payload
                if outer.corrupt:
                    data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
                start, status = 0, 200
                range_header = self.headers.get("Range")
                if_range = self.headers.get("If-Range")
                if if_range is not None and if_range != outer.etag:
                    range_header = None  # the file changed since the client's copy began
                if range_header and not outer.ignore_range:
                    start = int(range_header.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                self.send_response(status)
                if outer.etag:
                    self.send_header("ETag", outer.etag)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if outer.cut_after:
                    body = body[: outer.cut_after.pop(0)]
                try:
                    if outer.stall_s:
                        time.sleep(outer.stall_s)
                    self.wfile.write(body)
                    self.wfile.flush()
                except OSError:
                    pass  # the client gave up first (timeout test)
                self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/w"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"{self.base}/{FILENAME}"


def serve_weights(monkeypatch):
    """A running WeightsServer with PAYLOAD that weights downloads use (also for test_depth_cli),
    and the model table's fingerprint for MODEL set to PAYLOAD's."""
    monkeypatch.setattr(weights, "get_spec", lambda model_type: PAYLOAD_SPEC if model_type == MODEL
                        else get_spec(model_type))
    srv = WeightsServer(PAYLOAD)
    srv.thread.start()
    monkeypatch.setenv(weights.URL_BASE_ENV, srv.base)
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    yield from serve_weights(monkeypatch)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def _with_spec(monkeypatch, **changes):
    spec = dataclasses.replace(PAYLOAD_SPEC, **changes)
    monkeypatch.setattr(weights, "get_spec", lambda model_type: spec)


def _assert_tells_what_to_do(message: str, url: str, folder):
    assert FILENAME in message
    assert url in message
    assert str(folder) in message
    assert "--weights FILE" in message


# --- cache folder -------------------------------------------------------------------------


def test_weights_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(weights.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.weights_dir() == tmp_path / "xdg" / "depth_addon" / "weights"
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(tmp_path / "env"))
    assert weights.weights_dir() == tmp_path / "env"
    assert weights.weights_dir(tmp_path / "arg") == tmp_path / "arg"  # e.g. Blender's Weights Folder
    monkeypatch.delenv(weights.WEIGHTS_DIR_ENV)
    assert weights.weights_dir() == tmp_path / "xdg" / "depth_addon" / "weights"


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [
        ("linux", {"XDG_CACHE_HOME": ""}, ("home", ".cache", "depth_addon", "weights")),
        ("darwin", {}, ("home", "Library", "Caches", "depth_addon", "weights")),
        ("win32", {"LOCALAPPDATA": "LOCAL"}, ("LOCAL", "depth_addon", "weights")),
    ],
)
def test_platform_cache_dir(monkeypatch, tmp_path, platform, env, expected):
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for key, value in env.items():
        monkeypatch.setenv(key, value.replace("LOCAL", str(tmp_path / "LOCAL")) if value else "")
    assert weights.platform_cache_dir() == tmp_path.joinpath(*expected)


def test_cached_weights_checks_size_when_known(monkeypatch, cache):
    assert weights.cached_weights(MODEL, cache) is None
    cache.mkdir()
    (cache / FILENAME).write_bytes(b"x" * 10)
    assert weights.cached_weights(MODEL, cache) == cache / FILENAME
    _with_spec(monkeypatch, size_bytes=11)
    assert weights.cached_weights(MODEL, cache) is None


# --- downloads ------------------------------------------------------------------------------


def test_full_download_reports_progress_and_is_cached(server, cache):
    calls = []
    path = weights.ensure_weights(MODEL, cache, progress=lambda done, total: calls.append((done, total)))
    assert path == cache / FILENAME
    assert path.read_bytes() == PAYLOAD
    assert not (cache / (FILENAME + ".part")).exists()
    assert server.requests == [None]
    assert calls[0] == (0, len(PAYLOAD)) and calls[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    # Second call: served from the cache, no request.
    assert weights.ensure_weights(MODEL, cache) == path
    assert server.requests == [None]


def test_interrupted_download_resumes_with_range(server, cache):
    cut = weights.CHUNK_BYTES + 1000
    server.cut_after = [cut]
    path = weights.ensure_weights(MODEL, cache)
    assert path.read_bytes() == PAYLOAD
    assert server.requests == [None, f"bytes={cut}-"]


def test_interrupted_every_time_keeps_part_and_next_call_resumes(server, cache):
    server.cut_after = [1000] * weights.RESUME_ATTEMPTS
    with pytest.raises(WeightsUnavailableError) as info:
        weights.ensure_weights(MODEL, cache)
    message = str(info.value)
    _assert_tells_what_to_do(message, server.url, cache)
    assert ".part" in message and "resume" in message
    part = cache / (FILENAME + ".part")
    assert part.stat().st_size == 1000 * weights.RESUME_ATTEMPTS
    assert server.requests == [None, "bytes=1000-", "bytes=2000-"]
    assert not (cache / FILENAME).exists()

    assert weights.ensure_weights(MODEL, cache).read_bytes() == PAYLOAD
    assert server.requests[-1] == "bytes=3000-"
    assert not part.exists()


def test_server_ignoring_range_restarts_cleanly(server, cache):
    cache.mkdir()
    (cache / (FILENAME + ".part")).write_bytes(b"stale bytes from another file")
    server.ignore_range = True
    path = weights.ensure_weights(MODEL, cache)
    assert server.requests == [None]  # text is no checkpoint's start: not even resumed
    assert path.read_bytes() == PAYLOAD


def test_complete_part_answered_416_is_accepted(server, cache):
    cache.mkdir()
    (cache / (FILENAME + ".part")).write_bytes(PAYLOAD)
    assert weights.ensure_weights(MODEL, cache).read_bytes() == PAYLOAD
    assert server.requests == [f"bytes={len(PAYLOAD)}-"]


def test_known_size_and_complete_part_need_no_request(monkeypatch, server, cache):
    _with_spec(monkeypatch, size_bytes=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest())
    cache.mkdir()
    (cache / (FILENAME + ".part")).write_bytes(PAYLOAD)
    assert weights.ensure_weights(MODEL, cache).read_bytes() == PAYLOAD
    assert server.requests == []


@pytest.mark.parametrize("digest_len", [64, 8])
def test_sha256_verified_full_or_prefix(monkeypatch, server, cache, digest_len):
    _with_spec(monkeypatch, sha256=hashlib.sha256(PAYLOAD).hexdigest()[:digest_len])
    assert weights.ensure_weights(MODEL, cache).read_bytes() == PAYLOAD


def test_corrupted_content_is_rejected_and_deleted(monkeypatch, server, cache):
    _with_spec(monkeypatch, sha256=hashlib.sha256(PAYLOAD).hexdigest()[:8])
    server.corrupt = True
    with pytest.raises(WeightsUnavailableError, match="corrupt") as info:
        weights.ensure_weights(MODEL, cache)
    _assert_tells_what_to_do(str(info.value), server.url, cache)
    assert "sha256" in str(info.value)
    assert [p.name for p in cache.iterdir()] == [FILENAME + ".lock"]  # no .part, no weights


def test_wrong_size_is_rejected_and_deleted(monkeypatch, server, cache):
    _with_spec(monkeypatch, size_bytes=len(PAYLOAD) + 1)
    with pytest.raises(WeightsUnavailableError, match="bytes instead of"):
        weights.ensure_weights(MODEL, cache)
    assert [p.name for p in cache.iterdir()] == [FILENAME + ".lock"]


def test_http_404_says_what_to_do(server, cache, monkeypatch):
    monkeypatch.setenv(weights.URL_BASE_ENV, server.base + "/missing")
    with pytest.raises(WeightsUnavailableError, match="HTTP 404") as info:
        weights.ensure_weights(MODEL, cache)
    _assert_tells_what_to_do(str(info.value), f"{server.base}/missing/{FILENAME}", cache)
    assert server.requests == [None]


def test_http_error_closes_its_connection(server, cache, monkeypatch):
    """The HTTPError stays alive as the raised error's cause: its connection must be closed."""
    monkeypatch.setenv(weights.URL_BASE_ENV, server.base + "/missing")
    with pytest.raises(WeightsUnavailableError, match="HTTP 404") as info:
        weights.ensure_weights(MODEL, cache)
    response = info.value.__cause__.fp
    assert response.closed


def test_server_missing_says_what_to_do(monkeypatch, cache):
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(weights.URL_BASE_ENV, f"http://127.0.0.1:{port}")
    with pytest.raises(WeightsUnavailableError, match="cannot reach the server") as info:
        weights.ensure_weights(MODEL, cache)
    _assert_tells_what_to_do(str(info.value), f"http://127.0.0.1:{port}/{FILENAME}", cache)


def test_stalled_server_times_out(server, cache):
    server.stall_s = 2.0
    with pytest.raises(WeightsUnavailableError, match="broke"):
        weights.download(server.url, cache / FILENAME, timeout=0.3, attempts=1)


def test_offline_never_touches_network(server, cache):
    with pytest.raises(WeightsUnavailableError, match="online access is off") as info:
        weights.ensure_weights(MODEL, cache, allow_download=False)
    message = str(info.value)
    assert "Allow Online Access" in message
    _assert_tells_what_to_do(message, server.url, cache)
    assert server.requests == []


def test_offline_uses_cache(server, cache):
    cache.mkdir()
    (cache / FILENAME).write_bytes(b"cached")
    assert weights.ensure_weights(MODEL, cache, allow_download=False) == cache / FILENAME


def test_cancel_keeps_part_for_resume(server, cache):
    calls = []

    def cancel():
        calls.append(None)
        return len(calls) > 2  # after two chunks

    with pytest.raises(CancelledError):
        weights.ensure_weights(MODEL, cache, cancel=cancel)
    part = cache / (FILENAME + ".part")
    assert part.stat().st_size == 2 * weights.CHUNK_BYTES
    assert weights.ensure_weights(MODEL, cache).read_bytes() == PAYLOAD
    assert server.requests == [None, f"bytes={2 * weights.CHUNK_BYTES}-"]
    assert sorted(p.name for p in cache.iterdir()) == [FILENAME]


def test_concurrent_callers_share_one_download(server, cache):
    server.stall_s = 0.3  # keep the first download busy while the second caller arrives
    results, errors = [], []

    def fetch():
        try:
            results.append(weights.ensure_weights(MODEL, cache))
        except Exception as exc:  # reported below; a thread cannot raise into the test
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)  # generous: a loaded machine is slow, a deadlock still fails below
    assert not any(thread.is_alive() for thread in threads), "a caller is still waiting"
    assert errors == []
    assert results == [cache / FILENAME] * 2
    assert server.requests == [None]
    assert (cache / FILENAME).read_bytes() == PAYLOAD


def test_other_process_download_is_waited_for(server, cache):
    server.stall_s = 1.0
    code = (
        "import sys, dataclasses; from depth_addon.midas import weights; "
        f"spec = dataclasses.replace(weights.get_spec({MODEL!r}), tensor_count=1, value_count={PAYLOAD_VALUES}); "
        "weights.get_spec = lambda model_type: spec; "
        f"weights.ensure_weights({MODEL!r}, sys.argv[1])"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), weights.URL_BASE_ENV: server.base}
    other = subprocess.Popen([sys.executable, "-c", code, str(cache)], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.requests == [None], "the other process never started its download"
        # The other process holds the lock and is mid-download: this call must wait, not append.
        assert weights.ensure_weights(MODEL, cache).read_bytes() == PAYLOAD
        assert server.requests == [None]
    finally:
        _, stderr = other.communicate(timeout=30)  # also closes the pipe
        assert other.returncode == 0, stderr.decode()


def test_file_system_without_file_locks_does_not_wait_forever(server, cache, monkeypatch):
    """Some network mounts answer every lock attempt with ENOLCK: download anyway, don't hang."""
    fcntl = pytest.importorskip("fcntl", reason="POSIX file locks")

    def no_locks_here(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks_here)
    started = time.monotonic()
    path = weights.ensure_weights(MODEL, cache, cancel=lambda: time.monotonic() - started > 5)
    assert path.read_bytes() == PAYLOAD


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux /dev/full")
def test_disk_full_is_not_retried_as_network_error(server, cache):
    cache.mkdir()
    (cache / (FILENAME + ".part")).symlink_to("/dev/full")  # every write fails with ENOSPC
    with pytest.raises(WeightsUnavailableError, match="No space left") as info:
        weights.ensure_weights(MODEL, cache)
    assert weights.WEIGHTS_DIR_ENV in str(info.value)
    assert server.requests == [None]


def test_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(WeightsUnavailableError, match="cannot create the weights folder"):
        weights.ensure_weights(MODEL, blocker / "sub")


# --- a download is proven to be a checkpoint before it is kept -------------------------------------


def _only_lock_left(cache):
    return sorted(p.name for p in cache.iterdir()) == [FILENAME + ".lock"]


@pytest.mark.parametrize(("body", "says"), [
    (b"<!DOCTYPE html><html><head><title>Sign in to the Wi-Fi</title></head><body>...</body></html>",
     "the server sent an HTML page, not a checkpoint"),
    (b"", "the server sent an empty file"),
    (b"Rate limit exceeded, try again later\n", "bytes of text, not a checkpoint"),
    (bytes(range(256)) * 64, "not a PyTorch checkpoint (neither its zip nor its pickle format)"),
    (PAYLOAD[: len(PAYLOAD) // 3], "a zip archive cut short or damaged"),
])
def test_what_arrived_instead_of_a_checkpoint_is_named_and_deleted(server, cache, body, says):
    """A captive portal, an empty or short 200 answer: nothing lands in the cache, later runs try again."""
    server.payload = body
    with pytest.raises(WeightsUnavailableError) as info:
        weights.ensure_weights(MODEL, cache)
    message = str(info.value)
    assert says in message and "deleted" in message and "\n" not in message
    _assert_tells_what_to_do(message, server.url, cache)
    assert _only_lock_left(cache)
    server.payload = PAYLOAD  # the next run downloads afresh
    assert weights.ensure_weights(MODEL, cache).read_bytes() == PAYLOAD


def test_another_models_checkpoint_is_refused(server, cache):
    server.payload = _checkpoint_bytes(PAYLOAD_VALUES + 1)
    with pytest.raises(WeightsUnavailableError, match=f"1 tensors and {PAYLOAD_VALUES + 1:,} values, not the "
                                                      f"1 and {PAYLOAD_VALUES:,} of {MODEL}"):
        weights.ensure_weights(MODEL, cache)
    assert _only_lock_left(cache)


def test_a_real_checkpoint_of_another_model_type_is_named(server, cache, monkeypatch):
    """The real fingerprints of the table: the file is recognised as the model type it is."""
    from conftest import reference_checkpoint

    monkeypatch.setattr(weights, "get_spec", get_spec)  # the real table
    server.payload = reference_checkpoint("dpt_levit_224").read_bytes()
    with pytest.raises(WeightsUnavailableError, match=f"a checkpoint for dpt_levit_224, not for {MODEL}"):
        weights.ensure_weights(MODEL, cache)
    assert _only_lock_left(cache)
    server.payload = reference_checkpoint(MODEL).read_bytes()
    assert weights.ensure_weights(MODEL, cache).read_bytes() == server.payload


def test_code_carrying_pickle_is_refused_not_run(server, cache, tmp_path):
    import pickle

    marker = tmp_path / "code-ran"
    server.payload = b"\x80\x02cos\nmkdir\n(X" + str(marker).encode() + b"\ntR."
    assert pickle.loads.__name__  # the payload: a protocol-2 pickle that calls os.mkdir when loaded unsafely
    with pytest.raises(WeightsUnavailableError, match="besides tensors"):
        weights.ensure_weights(MODEL, cache)
    assert not marker.exists() and _only_lock_left(cache)


def test_part_of_a_file_changed_on_the_server_is_not_resumed(server, cache):
    """The .part began with another version of the file (another ETag): start over, never splice."""
    server.etag = '"old"'
    server.payload = _checkpoint_bytes(PAYLOAD_VALUES, start=7)
    assert len(server.payload) == len(PAYLOAD) and server.payload != PAYLOAD
    server.cut_after = [weights.CHUNK_BYTES + 7] * weights.RESUME_ATTEMPTS
    with pytest.raises(WeightsUnavailableError, match="resumes"):
        weights.ensure_weights(MODEL, cache)
    server.etag, server.payload = '"new"', PAYLOAD
    assert weights.ensure_weights(MODEL, cache).read_bytes() == PAYLOAD
    assert server.requests[-1] == f"bytes={(weights.CHUNK_BYTES + 7) * weights.RESUME_ATTEMPTS}-"
    assert sorted(p.name for p in cache.iterdir()) == [FILENAME]  # record and lock gone


def test_part_of_an_html_page_is_not_resumed(server, cache):
    cache.mkdir()
    (cache / (FILENAME + ".part")).write_bytes(b"<html><body>captive portal</body>")
    assert weights.ensure_weights(MODEL, cache).read_bytes() == PAYLOAD
    assert server.requests == [None]


def test_redirect_loop_is_one_line(server, cache):
    server.redirect = True
    with pytest.raises(WeightsUnavailableError) as info:
        weights.ensure_weights(MODEL, cache)
    message = str(info.value)
    assert "redirects in a loop" in message and "HTTP 302" in message and "\n" not in message


# --- Depth Anything V2 weights (Hugging Face URLs from the table) ---------------------------

DAV2_FILES = {
    "depth_anything_v2_vits": "Depth-Anything-V2-Small",
    "depth_anything_v2_vitb": "Depth-Anything-V2-Base",
    "depth_anything_v2_vitl": "Depth-Anything-V2-Large",
    "depth_anything_v2_metric_hypersim_vits": "Depth-Anything-V2-Metric-Hypersim-Small",
    "depth_anything_v2_metric_hypersim_vitl": "Depth-Anything-V2-Metric-Hypersim-Large",
    "depth_anything_v2_metric_vkitti_vitl": "Depth-Anything-V2-Metric-VKITTI-Large",
}


@pytest.mark.parametrize("model_type", list(DAV2_FILES))
def test_depth_anything_url_is_the_model_page_file(monkeypatch, model_type):
    monkeypatch.delenv(weights.URL_BASE_ENV, raising=False)
    repo = DAV2_FILES[model_type]
    expected = f"https://huggingface.co/depth-anything/{repo}/resolve/main/{model_type}.pth"
    assert weights.weights_url(model_type) == expected
    assert get_spec(model_type).filename == f"{model_type}.pth"


@pytest.mark.parametrize("model_type", list(DAV2_FILES))
def test_depth_anything_weights_download_from_their_hub_path(monkeypatch, server, cache, model_type):
    """The table's whole URL path is fetched (served on 127.0.0.1 in the hub's layout), resumably."""
    from urllib.parse import urlsplit

    spec = get_spec(model_type)
    server.path = urlsplit(spec.url).path   # /depth-anything/<repo>/resolve/main/<file>.pth
    root = server.base.removesuffix("/w")
    local = dataclasses.replace(spec, url=root + server.path, tensor_count=1, value_count=PAYLOAD_VALUES)
    monkeypatch.setattr(weights, "get_spec", lambda name: local)
    monkeypatch.delenv(weights.URL_BASE_ENV)
    server.cut_after = [weights.CHUNK_BYTES + 7]  # first request dropped: the second resumes it
    path = weights.ensure_weights(model_type, cache)
    assert path == cache / f"{model_type}.pth" and path.read_bytes() == PAYLOAD
    assert server.requests == [None, f"bytes={weights.CHUNK_BYTES + 7}-"]


def test_depth_anything_weights_through_a_mirror(monkeypatch, server, cache):
    model_type = "depth_anything_v2_vits"
    fitted = dataclasses.replace(get_spec(model_type), tensor_count=1, value_count=PAYLOAD_VALUES)
    monkeypatch.setattr(weights, "get_spec", lambda name: fitted)  # PAYLOAD's fingerprint
    server.path = f"/w/{model_type}.pth"
    assert weights.ensure_weights(model_type, cache).read_bytes() == PAYLOAD
