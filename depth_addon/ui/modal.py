"""Running a ``jobs.Job`` from an operator: modal + timer from the UI, synchronous otherwise.

``JobOperator`` is the mix-in: an operator defines ``job_key``, ``make_job`` and ``finish``
(checked when the class is defined). From the UI the job runs in its thread and a
``JobHandle`` (the idea of bl_pkg's ``CommandHandle``) follows it on the main thread: the
modal timer, progress in the status bar (and the 3D Viewport header), Esc, and the tidy end.
In background mode, scripts and redo the job runs in the calling thread. Either way the
result becomes Blender data on the main thread, in ``finish``; cancel always wins.

``ACTIVE`` maps a key ("depth", "download:<model>", "install") to the running job, so panels
can draw its progress and a cancel button.
"""

from __future__ import annotations

import traceback

import bpy

from ..errors import DepthAddonError
from .jobs import Job

ACTIVE: dict[str, Job] = {}
TIMER_STEP_S = 0.1
RUNNING, CANCELLED, DONE = "running", "cancelled", "done"


def running_job(key: str) -> Job | None:
    """The job under ``key`` while its thread runs (a cancelled one too, until it stops), else None."""
    job = ACTIVE.get(key)
    return job if job is not None and not job.done else None


def is_modal(op, context) -> bool:
    """Run in a thread with a modal timer only when invoked from the UI (never in background or redo)."""
    if bpy.app.background or context.window is None:
        return False
    options = op.options
    return options.is_invoke and not (options.is_repeat or options.is_repeat_last)


def report_exception(op, exc: BaseException, trace: str = "") -> None:
    """User-fixable errors as they are; anything else as a bug with the traceback on the console."""
    if isinstance(exc, DepthAddonError):
        op.report({"ERROR"}, str(exc))
        return
    print(trace or "".join(traceback.format_exception(exc)))
    op.report({"ERROR"}, f"Unexpected {type(exc).__name__}: {exc} (details in the system console; "
                         "please report this as a bug)")


def redraw_progress_areas(context) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PREFERENCES", "IMAGE_EDITOR"}:
                area.tag_redraw()


class JobHandle:
    """A job running in its thread, as the main thread sees it: ``start`` registers it in
    ``ACTIVE`` with a timer, ``step`` handles one event (RUNNING, CANCELLED or DONE), ``end``
    removes the timer and the progress texts (and the ``ACTIVE`` entry once the thread ended)."""

    def __init__(self, key: str, job: Job, show_in_header: bool = False) -> None:
        self.key = key
        self.job = job
        self.show_in_header = show_in_header
        self.timer = None

    def start(self, context) -> bool:
        """Start the job's thread; False (nothing started) while another job runs under the same key."""
        if running_job(self.key) is not None:
            return False
        ACTIVE[self.key] = self.job.start()
        wm = context.window_manager
        self.timer = wm.event_timer_add(TIMER_STEP_S, window=context.window)
        wm.progress_begin(0, 100)
        self.show_progress(context)
        return True

    def step(self, context, event) -> str:
        job = self.job
        if event.type == "ESC" and event.value == "PRESS":
            job.cancel()
        if job.cancelled():
            self.end(context)  # not waiting for the thread: its result is dropped, nothing was changed
            return CANCELLED
        if event.type != "TIMER" or not job.done:
            if event.type == "TIMER":
                self.show_progress(context)
            return RUNNING
        self.end(context)
        return DONE

    def status_text(self) -> str:
        fraction, message = self.job.progress
        return f"{self.job.title} {fraction:.0%}: {message}   (Esc to cancel)"

    def show_progress(self, context) -> None:
        text = self.status_text()
        context.workspace.status_text_set(text)
        context.window_manager.progress_update(int(self.job.progress[0] * 100))
        self._header_text(context, text)
        redraw_progress_areas(context)

    def end(self, context) -> None:
        wm = context.window_manager
        if self.timer is not None:
            wm.event_timer_remove(self.timer)
            self.timer = None
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        self._header_text(context, None)
        # A cancelled worker may still be inside the network for a few seconds: its entry
        # stays (and blocks a second run) until the thread ends; a finished one is removed.
        if ACTIVE.get(self.key) is self.job and self.job.done:
            del ACTIVE[self.key]
        redraw_progress_areas(context)

    def _header_text(self, context, text: str | None) -> None:
        if not self.show_in_header or context.window is None:
            return
        for area in context.window.screen.areas:
            if area.type == "VIEW_3D":
                area.header_text_set(text)


class JobOperator:
    """Mix-in running a ``jobs.Job``; a subclass defines

    ``job_key() -> str`` (one running job per key), ``make_job(context) -> Job | None`` (None:
    nothing to do, already reported) and ``finish(context, job) -> {'FINISHED'} | {'CANCELLED'}``
    (main thread). ``show_in_header``: progress in the 3D Viewport header too.
    """

    REQUIRED = ("job_key", "make_job", "finish")
    show_in_header = False
    _handle: JobHandle | None = None   # the running job (modal only)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        missing = [name for name in cls.REQUIRED if not callable(getattr(cls, name, None))]
        if missing:
            raise TypeError(f"{cls.__name__} must define {', '.join(missing)} to run a job (see ui.modal.JobOperator)")

    def execute(self, context):
        try:
            job = self.make_job(context)
        except DepthAddonError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if job is None:
            return {"CANCELLED"}
        if not is_modal(self, context):
            return self.finish(context, job.run_sync())
        handle = JobHandle(self.job_key(), job, self.show_in_header)
        if not handle.start(context):
            self.report({"ERROR"}, "Already running: wait for it to finish or press Esc")
            return {"CANCELLED"}
        self._handle = handle
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        handle = self._handle
        try:
            state = handle.step(context, event)
        except Exception:
            # Never leave a timer, a status text or a running worker behind a bug.
            handle.job.cancel()
            handle.end(context)
            raise
        if state == CANCELLED:
            self.report({"WARNING"}, f"{handle.job.title} cancelled; nothing was changed")
            return {"CANCELLED"}
        if state == RUNNING:
            return {"RUNNING_MODAL", "PASS_THROUGH"}
        return self.finish(context, handle.job)

    def cancel(self, context):
        """Blender ends the operator (file browser closed, file loaded, window closed)."""
        if self._handle is None:  # the file browser was cancelled: nothing started
            return
        self._handle.job.cancel()
        self._handle.end(context)

    def job_failed(self, job) -> bool:
        """Report a failed or cancelled job; True if there is nothing to finish."""
        if job.was_cancelled:
            self.report({"WARNING"}, f"{job.title} cancelled; nothing was changed")
            return True
        if job.error is not None:
            report_exception(self, job.error, job.error_traceback)
            return True
        return False
