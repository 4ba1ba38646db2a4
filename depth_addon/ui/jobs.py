"""Long work off Blender's main thread: the thread-job primitive (no bpy here).

A ``Job`` runs its work either in a daemon thread (``start()``, polled by a modal operator's
timer, see ``ui.modal``) or in the calling thread (``run_sync()``, for background mode and
scripts). Either way progress, the cancel flag, the result and the error live on the job
behind a lock, so the main thread can read them at any time. The work is a callable
``task(progress, cancel)`` (e.g. ``depth_addon.depth_job.DepthJob``) or a subclass's ``work()``.
Job code never touches bpy data: operators copy what a job needs (paths, pixels, settings)
before starting it and turn its result into datablocks afterwards, on the main thread.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

from ..errors import CancelledError


class Job:
    """Runs ``task(progress, cancel)``, or a subclass's ``work()`` that calls ``self.report()`` /
    ``self.check_cancel()``; ``title`` names it in the status bar (default: the task's ``title``)."""

    title = "Working"

    def __init__(self, task: Callable[[Callable[[float, str], None], Callable[[], bool]], object] | None = None,
                 title: str | None = None) -> None:
        self.task = task
        self.title = title or getattr(task, "title", None) or self.title
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
        if self.task is None:
            raise NotImplementedError("give Job a task or override work()")
        return self.task(self.report, self.cancelled)

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
