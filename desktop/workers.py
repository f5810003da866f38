"""Run blocking work (network, keyring, the replica) off the UI thread.

``TaskRunner.submit(fn, on_success=..., on_error=...)`` runs ``fn()`` on a private
thread pool; the result or the exception comes back by a queued signal, so both
callbacks run on the UI thread, where touching widgets is allowed.
"""

from __future__ import annotations

import functools
import gc
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from desktop.qt import QObject, Qt, QThreadPool, QTimer, Signal, Slot
from sync.client import ApiError

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]


class _Relay(QObject):
    """Lives on the UI thread for as long as its runner; workers emit ``done`` here and
    Qt queues the call to the UI thread. Workers hold no other Qt object: a Qt wrapper
    whose last reference dies on a worker thread is what crashes PySide."""

    done = Signal(int, object, object)  # job id, result, exception (or None)


def _work(relay: _Relay, job_id: int, fn: Callable[[], Any], name: str) -> None:
    """The body of one job, on a pool thread."""
    result: Any = None
    error: BaseException | None = None
    try:
        result = fn()
    except ApiError as exc:
        error = exc
    except Exception as exc:
        log.exception("background task %r failed", name)
        error = exc
    try:
        relay.done.emit(job_id, result, error)
    except RuntimeError:  # the runner was destroyed (app quitting)
        log.debug("result of %r dropped: runner gone", name)


class TaskRunner(QObject):
    """A small private thread pool whose results are delivered on the UI thread."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, *, max_threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._relay = _Relay(self)
        self._relay.done.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._callbacks: dict[int, tuple[Callback, Callback]] = {}
        self._ids = itertools.count(1)

    @property
    def busy(self) -> bool:
        return bool(self._callbacks)

    def submit(
        self,
        fn: Callable[[], Any],
        *,
        on_success: Callback,
        on_error: Callback,
        name: str = "task",
    ) -> None:
        """Run ``fn()`` on the pool; then ``on_success(result)`` or ``on_error(exception)``
        on the UI thread."""
        job_id = next(self._ids)
        self._callbacks[job_id] = (on_success, on_error)
        if len(self._callbacks) == 1:
            self.busy_changed.emit(True)
        self._pool.start(functools.partial(_work, self._relay, job_id, fn, name))

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until running tasks end (for shutdown and tests); True when all ended."""
        return bool(self._pool.waitForDone(msecs))

    @Slot(int, object, object)
    def _deliver(self, job_id: int, result: Any, error: BaseException | None) -> None:
        on_success, on_error = self._callbacks.pop(job_id)
        try:
            if error is None:
                on_success(result)
            else:
                on_error(error)
        finally:
            if not self._callbacks:
                self.busy_changed.emit(False)


class GarbageCollector(QObject):
    """Python's cycle collector runs on whichever thread happens to allocate: a worker,
    or an embedded server's thread. A Qt wrapper freed there crashes PySide. So while
    the app runs, automatic collection is off and collection runs on the UI thread, on
    a timer and soon after a window goes away (Anki does the same)."""

    INTERVAL_MS = 120_000
    _holders = 0  # apps running at once (tests build several in one process)
    _was_enabled = True

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(self.INTERVAL_MS)
        self._timer.timeout.connect(self.collect)
        self._active = False

    def start(self) -> None:
        if self._active:
            return
        self._active = True
        cls = GarbageCollector
        if cls._holders == 0:
            cls._was_enabled = gc.isenabled()
            gc.collect()
            gc.disable()
        cls._holders += 1
        self._timer.start()

    def stop(self) -> None:
        if not self._active:
            return
        self._active = False
        self._timer.stop()
        gc.collect()
        cls = GarbageCollector
        cls._holders -= 1
        if cls._holders == 0 and cls._was_enabled:
            gc.enable()

    def collect_soon(self) -> None:
        """Collect once the event loop has run the pending deferred deletions."""
        QTimer.singleShot(500, self, self.collect)

    @Slot()
    def collect(self) -> None:
        gc.collect()


class SerialWorker(QObject):
    """One thread that runs jobs one after another, in the order given (Anki's
    single-thread executor). The replica's writer is one: every write to the replica
    file happens on its thread. ``submit`` delivers the result on the UI thread by
    signal; ``call`` runs a function there and waits for it, for another worker
    thread (the sync thread hands its replica calls over this way), never for the
    UI thread."""

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._relay = _Relay(self)
        self._relay.done.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._callbacks: dict[int, tuple[Callback | None, Callback | None]] = {}
        self._ids = itertools.count(1)
        self._thread_id: int | None = None
        self._closed = False
        self._executor.submit(self._remember_thread).result()

    def _remember_thread(self) -> None:
        self._thread_id = threading.get_ident()

    @property
    def busy(self) -> bool:
        return bool(self._callbacks)

    def on_thread(self) -> bool:
        return threading.get_ident() == self._thread_id

    def submit(
        self,
        fn: Callable[[], Any],
        *,
        on_success: Callback | None = None,
        on_error: Callback | None = None,
        name: str = "job",
    ) -> None:
        """Queue ``fn()``; then ``on_success(result)`` or ``on_error(exception)`` on the UI
        thread. ``fn`` must hold no Qt object (see ``_Relay``)."""
        if self._closed:
            log.debug("%s: job %r dropped after shutdown", self.name, name)
            return
        job_id = next(self._ids)
        self._callbacks[job_id] = (on_success, on_error)
        self._executor.submit(_work, self._relay, job_id, fn, f"{self.name}: {name}")

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` on this worker's thread and return its result (or raise)."""
        if self.on_thread():
            return fn()
        return self._executor.submit(fn).result()

    def shutdown(self, final: Callable[[], Any] | None = None) -> None:
        """Run what is queued, then ``final()`` (closing a connection) and stop."""
        if self._closed:
            return
        self._closed = True
        if final is not None:
            self._executor.submit(final)
        self._executor.shutdown(wait=True)

    @Slot(int, object, object)
    def _deliver(self, job_id: int, result: Any, error: BaseException | None) -> None:
        on_success, on_error = self._callbacks.pop(job_id, (None, None))
        if error is None:
            if on_success is not None:
                on_success(result)
        elif on_error is not None:
            on_error(error)
        else:
            log.error("%s: %s", self.name, error)
