"""The replica behind the windows: one writer thread, one reader thread, one sync thread.

- **Writer** (``SerialWorker("replica-writer")``): owns the ``Replica`` write
  connection. Every write runs here, one after another: the edits of
  ``desktop.operations`` and every replica call the sync engine makes.
- **Sync** (``SerialWorker("replica-sync")``): runs ``SyncEngine.sync()``. The engine
  gets the replica through ``_OnWriter``, which hands each call to the writer thread
  and waits for it; so the network waits happen here, the writes on the writer, and
  an edit made while a sync waits for the server is written between two of its
  transactions instead of after the whole sync.
- **Reader** (``SerialWorker("replica-reader")``): a read-only ``ReplicaReader`` for
  the views (queue pages, a ticket, the status); WAL lets it read while the writer
  writes.

Results come back to the UI thread by queued signals; the UI thread never waits on the
network or on a query. Every write's ``Changes`` is announced by ``changed``, and the
views decide from it whether to reload (Anki's ``operation_did_execute``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from desktop.data import Names, Reader
from desktop.qt import QObject, QTimer, Signal, Slot
from desktop.workers import SerialWorker, TaskRunner
from sync.client import ApiClient, ServerUnreachable
from sync.engine import Outcome, SyncEngine, SyncReport
from sync.replica import Changes, EditRefused, Replica, ReplicaReader, ReplicaStatus

log = logging.getLogger(__name__)

SYNC_INTERVAL_MS = 60_000
PROBE_INTERVAL_MS = 15_000


class _OnWriter:
    """The replica as the sync engine sees it from the sync thread: each method call and
    property read runs on the writer thread (``SerialWorker.call``)."""

    def __init__(self, worker: SerialWorker, replica: Replica) -> None:
        self._worker = worker
        self._replica = replica

    def __getattr__(self, name: str) -> Any:
        replica = self._replica
        if isinstance(getattr(type(replica), name, None), property):
            return self._worker.call(lambda: getattr(replica, name))
        attr = getattr(replica, name)
        if not callable(attr):
            return attr

        def on_writer(*args: Any, **kwargs: Any) -> Any:
            return self._worker.call(lambda: attr(*args, **kwargs))

        return on_writer


@dataclass(frozen=True, slots=True)
class _SyncDone:
    report: SyncReport
    next_retry_at: float | None


def _run_sync(
    engine: SyncEngine,
    retry_now: bool,
    progress: Callable[[str, int, int | None], None],
    cancelled: threading.Event,
) -> _SyncDone:
    report = engine.sync(progress=progress, cancelled=cancelled.is_set, retry_now=retry_now)
    return _SyncDone(report, engine.next_retry_at())


class _ProgressRelay(QObject):
    """The sync thread emits here; Qt queues the call to the UI thread."""

    progress = Signal(str, int, object)


class ReplicaHost(QObject):
    """Opens the replica, runs reads, edits and syncs on their threads, and says what
    changed. Create it on the UI thread; call ``start()``; ``shutdown()`` at the end."""

    #: the replica is open (or could not be: the argument is the error, else None)
    opened = Signal(object)
    #: a write changed the replica (an edit, or a sync): ``Changes``
    changed = Signal(object)
    #: ``ReplicaStatus`` after a write or a sync
    status_changed = Signal(object)
    #: online (True), offline (False) or not known yet (None)
    online_changed = Signal(object)
    sync_started = Signal()
    #: phase, done, total (None when the server does not say)
    sync_progress = Signal(str, int, object)
    sync_finished = Signal(object)  # SyncReport
    #: an edit was refused (the sentence to show)
    edit_failed = Signal(str)
    #: the administrator ordered a remote wipe: the replica file is gone and the session
    #: ended (the sentence to show); the host has stopped its timers
    wiped = Signal(str)

    def __init__(
        self,
        path: Path,
        *,
        server_url: str,
        user_id: str,
        client: ApiClient,
        online: bool | None = None,
        sync_interval_ms: int = SYNC_INTERVAL_MS,
        probe_interval_ms: int = PROBE_INTERVAL_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.path = path
        self.server_url = server_url
        self.user_id = user_id
        self.client = client
        self.writer = SerialWorker("replica-writer", self)
        self.reader = SerialWorker("replica-reader", self)
        self.syncer = SerialWorker("replica-sync", self)
        self.network = TaskRunner(self, max_threads=1)
        self.names = Names()
        self._replica: Replica | None = None
        self._reading: ReplicaReader | None = None
        self._engine: SyncEngine | None = None
        self._cancel = threading.Event()
        self._progress = _ProgressRelay(self)
        self._progress.progress.connect(self.sync_progress)
        self.syncing = False
        self._sync_again = False
        self.online: bool | None = online
        self.last_report: SyncReport | None = None
        self.status: ReplicaStatus | None = None
        self._sync_timer = QTimer(self)
        self._sync_timer.setInterval(sync_interval_ms)
        self._sync_timer.timeout.connect(self._scheduled)
        self._probe_timer = QTimer(self)
        self._probe_timer.setInterval(probe_interval_ms)
        self._probe_timer.timeout.connect(self.probe)
        self._retry_timer = QTimer(self)
        self._retry_timer.setSingleShot(True)
        self._retry_timer.timeout.connect(self._scheduled)
        self._closed = False

    # ---------------------------------------------------------------- lifecycle

    @property
    def is_open(self) -> bool:
        return self._replica is not None

    def start(self, *, sync: bool = True) -> None:
        """Open the replica on the writer, then the reader; then sync (when ``sync``)."""
        path, server_url, user_id = self.path, self.server_url, self.user_id
        self.writer.submit(
            lambda: Replica.open(path, server_url=server_url, user_id=user_id),
            on_success=lambda replica: self._opened(replica, sync),
            on_error=lambda error: self.opened.emit(error),
            name="open",
        )

    def _opened(self, replica: Replica, sync: bool) -> None:
        if self._closed:
            self.writer.submit(replica.close, name="close")
            return
        self._replica = replica
        self._engine = SyncEngine(cast(Replica, _OnWriter(self.writer, replica)), self.client)
        path = self.path
        self.reader.submit(
            lambda: ReplicaReader(path),
            on_success=lambda reading: self._reader_opened(reading, sync),
            on_error=lambda error: self.opened.emit(error),
        )

    def _reader_opened(self, reading: ReplicaReader, sync: bool) -> None:
        if self._closed:
            self.reader.submit(reading.close)
            return
        self._reading = reading
        self.opened.emit(None)
        self.refresh_status()
        if not sync:
            return
        self._sync_timer.start()
        if self.online is False:
            # Opened offline: probe first; the first answer brings a sync.
            self._probe_timer.start()
            self.probe()
        else:
            self.sync_now(retry_now=False)

    def shutdown(self) -> None:
        """Stop the timers, cancel a running sync between pages, finish the queued writes,
        close both connections. Blocks (at quit or sign-out)."""
        if self._closed:
            return
        self._closed = True
        for timer in (self._sync_timer, self._probe_timer, self._retry_timer):
            timer.stop()
        self._cancel.set()
        self.syncer.shutdown()
        self.network.wait()
        replica, reading = self._replica, self._reading
        self.reader.shutdown(reading.close if reading is not None else None)
        self.writer.shutdown(replica.close if replica is not None else None)
        self._replica = self._reading = None

    # ---------------------------------------------------------------- reads

    def read(
        self,
        fn: Callable[[Reader, Names], Any],
        on_success: Callable[[Any], None],
        on_error: Callable[[BaseException], None] | None = None,
        *,
        name: str = "read",
    ) -> None:
        """Run ``fn(reader, names)`` on the reader thread; ``on_success(result)`` on the
        UI thread. ``fn`` must hold no Qt object."""
        reading, names = self._reading, self.names
        if reading is None or self._closed:
            return
        self.reader.submit(
            lambda: fn(reading, names), on_success=on_success, on_error=on_error, name=name
        )

    def refresh_status(self) -> None:
        self.read(lambda reader, _: reader.status(), self._status_read, name="status")

    def _status_read(self, status: ReplicaStatus) -> None:
        self.status = status
        self.status_changed.emit(status)

    # ---------------------------------------------------------------- edits

    def edit(
        self,
        fn: Callable[[Replica], Changes],
        *,
        name: str = "edit",
        on_done: Callable[[Changes], None] | None = None,
    ) -> None:
        """Run ``fn(replica)`` on the writer thread; announce its ``Changes``. The edit is
        in the outbox when ``changed`` fires; the next sync sends it."""
        replica = self._replica
        if replica is None or self._closed:
            self.edit_failed.emit("The replica is not open yet")
            return

        def done(changes: Changes) -> None:
            self._announce(changes)
            if on_done is not None:
                on_done(changes)

        self.writer.submit(
            lambda: fn(replica), on_success=done, on_error=self._edit_error, name=name
        )

    def _edit_error(self, error: BaseException) -> None:
        if isinstance(error, EditRefused):
            self.edit_failed.emit(error.message)
        else:
            self.edit_failed.emit(f"Could not save: {error}")

    def _announce(self, changes: Changes) -> None:
        tables = [t for t in Names.TABLES if changes.touches(t)]
        if tables:
            names = self.names
            self.reader.submit(lambda: names.invalidate(tables), name="names")
        if changes:
            self.changed.emit(changes)
        self.refresh_status()

    # ---------------------------------------------------------------- sync

    @Slot()
    def sync_now(self, retry_now: bool = True) -> None:
        """Sync on the sync thread ("Sync now" sends the outbox even before its retry
        delay). A request while a sync runs makes one more sync after it."""
        engine = self._engine
        if engine is None or self._closed:
            return
        if self.syncing:
            self._sync_again = True
            return
        self.syncing = True
        self._retry_timer.stop()
        self.sync_started.emit()
        relay, cancel = self._progress, self._cancel
        self.syncer.submit(
            lambda: _run_sync(engine, retry_now, relay.progress.emit, cancel),
            on_success=self._synced,
            on_error=self._sync_crashed,
            name="sync",
        )

    def _synced(self, done: _SyncDone) -> None:
        self.syncing = False
        report = done.report
        self.last_report = report
        if report.outcome is Outcome.OFFLINE:
            self._set_online(False)
        elif report.outcome not in (Outcome.CANCELLED,):
            self._set_online(True)
        if report.outcome is Outcome.WIPED:
            # The engine deleted the replica and ended the session: nothing more to
            # read, write or sync. The owner closes the window and this host.
            for timer in (self._sync_timer, self._probe_timer, self._retry_timer):
                timer.stop()
            self.sync_finished.emit(report)
            self.wiped.emit(report.errors[-1] if report.errors else "This computer was wiped.")
            return
        self._announce(report.changes)
        self.sync_finished.emit(report)
        if self._closed:
            return
        if self._sync_again:
            self._sync_again = False
            QTimer.singleShot(0, self, self.sync_now)
            return
        if self.online and done.next_retry_at is not None:
            delay = max(1.0, done.next_retry_at - time.time())
            if delay * 1000 < self._sync_timer.remainingTime():
                self._retry_timer.start(int(delay * 1000))

    def _sync_crashed(self, error: BaseException) -> None:
        self.syncing = False
        log.error("sync failed: %s", error)
        self.refresh_status()

    def _set_online(self, online: bool) -> None:
        if online:
            self._probe_timer.stop()
        elif not self._probe_timer.isActive() and not self._closed:
            self._probe_timer.start()
        if online != self.online:
            self.online = online
            self.online_changed.emit(online)

    @Slot()
    def _scheduled(self) -> None:
        if self.online is False:
            self.probe()
        else:
            self.sync_now(retry_now=False)

    @Slot()
    def probe(self) -> None:
        """Is the server back? One cheap request (health) on the network thread; a sync
        follows at once when it answers."""
        if self.syncing or self._closed or self.network.busy:
            return
        client = self.client
        self.network.submit(
            lambda: _reachable(client),
            on_success=self._probed,
            on_error=lambda error: log.debug("probe failed: %s", error),
            name="probe",
        )

    def _probed(self, reachable: bool) -> None:
        if reachable and not self._closed:
            self.sync_now(retry_now=True)


def _reachable(client: ApiClient) -> bool:
    try:
        client.health()
    except ServerUnreachable:
        return False
    except Exception:  # any answer at all (even an error page) means the network is back
        return True
    return True
