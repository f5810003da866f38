"""The sync engine: one full sync of a replica with the server (``docs/sync-protocol.md``).

``SyncEngine(replica, client).sync()`` pushes the outbox, pulls the scope's changes
page by page, hydrates tickets new to the replica, and answers the protocol's special
cases (410 resync, 426 upgrade, remote wipe, an ended session). It never touches Qt:
the desktop runs it on its single replica worker thread, ``resolve-sync`` on its main
thread. Every write goes through the replica store, one transaction per page, so a
sync stopped anywhere (cancelled, killed, offline) leaves a consistent replica and an
intact outbox; the next sync carries on.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from common import __version__
from common.errors import ErrorCode
from sync import wire
from sync.client import ApiClient, ApiError, ServerUnreachable
from sync.replica import BACKOFF_MAX, Changes, Replica, ReplicaError, backoff_delay
from sync.wire import MAX_HYDRATE, MAX_PUSH, PullPage, Verdict, WireError

#: tickets per pull page (the server caps it at 500)
PULL_LIMIT = 200
#: push-and-upload rounds per sync (each round frees the attach mutations whose files
#: it uploaded; tickets created here with files need one round each, at most)
_MAX_ROUNDS = 20
#: the code a push of a wiped device gets (410); a pull says ``"wipe": true`` instead
DEVICE_WIPED = "DEVICE_WIPED"

Progress = Callable[[str, int, int | None], None]
Cancelled = Callable[[], bool]


class Outcome(enum.StrEnum):
    """How a sync ended. Anything but ``OK`` comes with a sentence in ``errors``."""

    OK = "ok"
    #: no answer from the server: edits stay queued, a retry is scheduled
    OFFLINE = "offline"
    #: the server failed or asked us to slow down (5xx, 429): a retry is scheduled
    SERVER_BUSY = "server_busy"
    #: the caller's ``cancelled()`` said stop (between pages)
    CANCELLED = "cancelled"
    #: 426: this app is too old for the server; nothing was dropped
    UPGRADE_REQUIRED = "upgrade_required"
    #: 401/403: the session ended, the account or organization was disabled
    SIGNED_OUT = "signed_out"
    #: the administrator ordered a remote wipe: the replica and sign-in are gone
    WIPED = "wiped"
    #: any other refusal (a 4xx, a malformed answer)
    REFUSED = "refused"


#: how bad each outcome is: a report keeps the worst one
_SEVERITY = {
    Outcome.OK: 0,
    Outcome.CANCELLED: 1,
    Outcome.SERVER_BUSY: 2,
    Outcome.OFFLINE: 3,
    Outcome.REFUSED: 4,
    Outcome.UPGRADE_REQUIRED: 5,
    Outcome.SIGNED_OUT: 6,
    Outcome.WIPED: 7,
}


@dataclass
class SyncReport:
    """What one ``sync()`` did, for a status bar, a log line or ``resolve-sync --json``."""

    started_at: str
    finished_at: str | None = None
    outcome: Outcome = Outcome.OK
    #: mutations judged by the server this time, and their verdicts
    pushed: int = 0
    applied: int = 0
    merged: int = 0
    conflicts: int = 0
    rejected: int = 0
    #: the rejections' and conflicts' sentences (also kept in ``replica.verdicts()``)
    rejections: list[str] = field(default_factory=list)
    #: rows received in pull pages, pull pages applied, rows removed from the replica
    pulled_rows: int = 0
    pages: int = 0
    removed: int = 0
    #: tickets brought with their whole history (hydrate)
    hydrated: int = 0
    #: files attached here that reached the server this time; files refused for good
    #: (their ``ticket.attach`` is rejected, saying why); files still waiting
    uploaded: int = 0
    uploads_refused: int = 0
    uploads_waiting: int = 0
    #: the server asked for a full download (410) and it was done
    resynced: bool = False
    #: a verify ran to the end; the tables that differed (downloaded again), and those
    #: that still differ after that
    verified: bool = False
    mismatched: list[str] = field(default_factory=list)
    still_mismatched: list[str] = field(default_factory=list)
    wiped: bool = False
    #: user-readable sentences, one per problem
    errors: list[str] = field(default_factory=list)
    #: when the outbox or a failed sync will be tried again (epoch seconds), or None
    retry_at: float | None = None
    #: still waiting in the outbox when the sync ended
    pending: int = 0
    #: everything the sync wrote to or removed from the replica, for views to refresh
    changes: Changes = field(default_factory=Changes, repr=False)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def retry_scheduled(self) -> bool:
        return self.retry_at is not None

    def fail(self, outcome: Outcome, message: str) -> None:
        if _SEVERITY[outcome] > _SEVERITY[self.outcome]:
            self.outcome = outcome
        if message not in self.errors:
            self.errors.append(message)

    def summary(self) -> str:
        """One or two sentences for a person."""
        parts = []
        if self.pushed:
            verdicts = [
                f"{n} {word}"
                for n, word in (
                    (self.applied, "applied"),
                    (self.merged, "merged"),
                    (self.conflicts, "in conflict"),
                    (self.rejected, "rejected"),
                )
                if n
            ]
            parts.append(f"sent {self.pushed} change(s) ({', '.join(verdicts)})")
        if self.uploaded:
            parts.append(f"uploaded {self.uploaded} file(s)")
        if self.pulled_rows:
            parts.append(f"received {self.pulled_rows} row(s) in {self.pages} page(s)")
        if self.removed:
            parts.append(f"removed {self.removed} row(s)")
        if self.hydrated:
            parts.append(f"brought {self.hydrated} ticket(s) with their history")
        if self.resynced:
            parts.append("downloaded everything again as the server asked")
        if self.mismatched:
            parts.append(f"repaired {', '.join(self.mismatched)} by downloading everything again")
        elif self.verified:
            parts.append("checked this copy against the server: it matches")
        text = ("Synced: " + "; ".join(parts) + ".") if parts else "Synced: nothing new."
        if not self.ok:
            text = " ".join(self.errors)
        if self.pending:
            text += f" {self.pending} change(s) wait to be sent"
            if self.retry_at is not None:
                text += f"; next try at {_clock(self.retry_at)}"
            text += "."
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "pushed": self.pushed,
            "applied": self.applied,
            "merged": self.merged,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
            "rejections": list(self.rejections),
            "pulledRows": self.pulled_rows,
            "pages": self.pages,
            "removed": self.removed,
            "hydrated": self.hydrated,
            "uploaded": self.uploaded,
            "uploadsRefused": self.uploads_refused,
            "uploadsWaiting": self.uploads_waiting,
            "resynced": self.resynced,
            "verified": self.verified,
            "mismatched": list(self.mismatched),
            "stillMismatched": list(self.still_mismatched),
            "wiped": self.wiped,
            "errors": list(self.errors),
            "retryAt": _iso(self.retry_at) if self.retry_at is not None else None,
            "pending": self.pending,
        }


class _Stop(Exception):
    """Ends a sync early; the report already says why."""


class SyncEngine:
    """Syncs one replica through one signed-in ``ApiClient``.

    ``on_wipe`` runs after a remote wipe deleted the replica, to forget the stored
    sign-in; by default the engine ends the session on the server (``client.logout()``,
    which tells the client's ``on_tokens`` listener to delete the stored token) and, if
    the server cannot be reached, forgets the tokens here (``client.forget()``).
    """

    def __init__(
        self,
        replica: Replica,
        client: ApiClient,
        *,
        on_wipe: Callable[[], None] | None = None,
        pull_limit: int = PULL_LIMIT,
        push_limit: int = MAX_PUSH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.replica = replica
        self.client = client
        self.on_wipe = on_wipe
        self.pull_limit = pull_limit
        #: mutations per push (the protocol's maximum, 100)
        self.push_limit = min(push_limit, MAX_PUSH)
        self.clock = clock
        self._lock = threading.Lock()
        #: consecutive syncs that got no answer (for the retry of a sync with no outbox)
        self._failures = 0
        self._retry_at: float | None = None
        self._retry_now = False
        self.wiped = False
        self.last_report: SyncReport | None = None

    # ---------------------------------------------------------------- public

    def sync(
        self,
        progress: Progress | None = None,
        cancelled: Cancelled | None = None,
        *,
        retry_now: bool = False,
        verify: bool = False,
    ) -> SyncReport:
        """One full sync: push and upload, pull, hydrate. Never raises for what the server or the
        network does: the report says what happened (a bug still raises).

        ``retry_now``: the user asked (a "Sync now" button, ``resolve-sync sync``): send
        the outbox even where its retry delay has not passed yet. ``verify``: then compare
        the replica with the server's counts and hashes (``POST /api/sync/verify``) and
        download the scope again when a table differs."""
        with self._lock:
            self._retry_now = retry_now
            report = SyncReport(started_at=_iso(self.clock()))
            if self.wiped:
                report.fail(Outcome.WIPED, _WIPED_TEXT)
                return self._finish(report)
            try:
                self._send(report, progress, cancelled)
                self._pull(report, progress, cancelled)
                self._hydrate(report, progress, cancelled)
                if verify:
                    self._verify(report, progress, cancelled)
            except _Stop:
                pass
            return self._finish(report)

    def next_retry_at(self) -> float | None:
        """When a scheduler should sync again without a new edit (epoch seconds): the
        outbox's next due time, or the retry of a sync that got no answer; None when
        nothing waits. A time in the past means now."""
        if self.wiped:
            return None
        due: list[float] = []
        head = self.replica.status()
        if head.pending and head.next_attempt_at is not None:
            due.append(head.next_attempt_at)
        if head.uploads_waiting and head.next_upload_at is not None:
            due.append(head.next_upload_at)
        if self._retry_at is not None:
            due.append(self._retry_at)
        return min(due) if due else None

    # ---------------------------------------------------------------- push

    def _send(
        self, report: SyncReport, progress: Progress | None, cancelled: Cancelled | None
    ) -> None:
        """Push and upload in rounds (guarantee 14). A push sends the due run of the
        outbox up to the first ``ticket.attach`` whose file is not uploaded yet; then the
        due uploads go, each once its ticket is on the server (a ticket created here is
        pushed first, in the run before); the attach mutations they freed go in the next
        round's push. A round that frees nothing ends it."""
        tried: set[str] = set()  # each file is tried once per sync
        for _ in range(_MAX_ROUNDS):
            if not self._push(report, progress, cancelled):
                return
            if not self._upload(report, cancelled, tried):
                return

    def _push(
        self, report: SyncReport, progress: Progress | None, cancelled: Cancelled | None
    ) -> bool:
        """Push the due run of the outbox in batches; False when a push failed (the
        mutations wait for their retry)."""
        total = len(self.replica.outbox())
        if not total:
            return True
        renumbered = False
        while True:
            self._check_cancelled(report, cancelled)
            body = self._push_request()
            if body is None:
                return True
            seqs = [int(m["seq"]) for m in body["mutations"]]
            # files refused for good: their attach is rejected; the report says why
            sent_ids = {str(m["id"]) for m in body["mutations"]}
            refusals = {
                job.mutation_id: _upload_refusal_text(job.file_name, job.last_error)
                for job in self.replica.uploads()
                if job.state == "failed" and job.mutation_id in sent_ids
            }
            try:
                data = self.client.request("POST", "/api/sync/push", json=body)
                results = data.get("results") if isinstance(data, Mapping) else None
                if not isinstance(results, list):
                    raise WireError("a push answer needs results")
                changes = self.replica.record_results(results)
            except ApiError as exc:
                if self._special(exc, report):
                    raise _Stop from exc
                retry_at = self.replica.record_failure(
                    seqs, exc.message, now=self.clock(), retry_after=exc.retry_after
                )
                report.retry_at = _earliest(report.retry_at, retry_at)
                if isinstance(exc, ServerUnreachable):
                    report.fail(Outcome.OFFLINE, _offline_text(exc))
                    raise _Stop from exc  # the pull would not get through either
                if exc.status == 429:
                    report.fail(Outcome.SERVER_BUSY, _busy_text(exc))
                    raise _Stop from exc  # asked to slow down: pull later too
                if exc.transient:
                    report.fail(Outcome.SERVER_BUSY, _busy_text(exc))
                else:
                    report.fail(Outcome.REFUSED, f"The server refused the changes: {exc.message}")
                return False  # the pull may still work; the outbox waits for its retry
            except WireError as exc:
                retry_at = self.replica.record_failure(
                    seqs, f"unreadable answer: {exc}", now=self.clock()
                )
                report.retry_at = _earliest(report.retry_at, retry_at)
                report.fail(
                    Outcome.REFUSED, f"The server's answer to the changes was unreadable: {exc}"
                )
                return False
            self._merge(report, changes)
            reused = [r for r in results if r.get("code") == ErrorCode.SEQUENCE_REUSED]
            if reused and isinstance(data.get("lastSequence"), int):
                # restored from a backup: number the pending changes after the server's
                # last and send them again (guarantee 4); at most once per sync
                if renumbered:
                    report.fail(Outcome.REFUSED, "The server refused the changes' numbering.")
                    return False
                self._merge(report, self.replica.renumber_after(data["lastSequence"]))
                renumbered = True
                answered = [r for r in results if r not in reused]
                self._count_verdicts(report, body["mutations"], answered, refusals)
                continue
            judged = self._count_verdicts(report, body["mutations"], results, refusals)
            if progress is not None:
                progress("push", report.pushed, total)
            if not judged:
                # the server answered none of them: do not send the same batch in a loop
                retry_at = self.replica.record_failure(
                    seqs, "the server judged none of the changes", now=self.clock()
                )
                report.retry_at = _earliest(report.retry_at, retry_at)
                report.fail(Outcome.REFUSED, "The server did not judge the changes sent.")
                return False

    def _push_request(self) -> dict[str, Any] | None:
        now = self.clock()
        mutations = self.replica.pending_mutations(
            self.push_limit, now=math.inf if self._retry_now else now
        )
        if not mutations:
            return None
        return {
            "protocolVersion": wire.PROTOCOL_VERSION,
            "clientVersion": __version__,
            "deviceId": self.replica.device_id,
            "sentAt": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "mutations": mutations,
        }

    def _count_verdicts(
        self,
        report: SyncReport,
        sent: list[dict[str, Any]],
        results: list[Any],
        refusals: Mapping[str, str] | None = None,
    ) -> int:
        sent_ids = {str(m["id"]) for m in sent}
        judged = 0
        for result in results:
            if not isinstance(result, Mapping) or str(result.get("id")) not in sent_ids:
                continue
            judged += 1
            report.pushed += 1
            verdict = result.get("verdict")
            if verdict == Verdict.APPLIED:
                report.applied += 1
            elif verdict == Verdict.MERGED:
                report.merged += 1
            elif verdict == Verdict.CONFLICT:
                report.conflicts += 1
                listed = result.get("conflicts") or ()
                fields = ", ".join(str(c.get("field")) for c in listed if isinstance(c, Mapping))
                report.rejections.append(
                    f"Someone else changed {fields or 'the same field'} too: "
                    "the server kept its value (see conflicts)."
                )
            elif verdict == Verdict.REJECTED:
                report.rejected += 1
                because = (refusals or {}).get(str(result.get("id")))
                report.rejections.append(
                    because
                    or str(result.get("message") or result.get("code") or "A change was refused.")
                )
        return judged

    # ---------------------------------------------------------------- uploads

    def _upload(self, report: SyncReport, cancelled: Cancelled | None, tried: set[str]) -> int:
        """Upload the due files of the upload queue (presign, then ``PUT`` the bytes),
        recording each storage key on its ``ticket.attach``. A file whose ticket is not
        on the server yet waits for the push of its ``ticket.create``; a failure worth
        retrying backs off in the upload queue; a refusal for good lets the attach go
        (to be rejected with the reason). Returns how many attach mutations it freed."""
        freed = 0
        now = self.clock()
        for job in self.replica.due_uploads(now=math.inf if self._retry_now else now):
            if job.attachment_id in tried:
                continue
            self._check_cancelled(report, cancelled)
            ticket = self.replica.row("tickets", job.ticket_id)
            if ticket is None:
                self.replica.upload_refused(
                    job.attachment_id, "its ticket is no longer on this computer"
                )
                report.uploads_refused += 1
                freed += 1
                continue
            if not ticket.synced:
                continue  # created here: its ticket.create is pushed first
            tried.add(job.attachment_id)
            path = self.replica.content_path(job.sha256)
            if not path.is_file():
                self.replica.upload_refused(job.attachment_id, "the file is no longer here")
                report.uploads_refused += 1
                freed += 1
                continue
            try:
                intent = self.client.request(
                    "POST",
                    "/api/uploads/presign",
                    json={
                        "fileName": job.file_name,
                        "mimeType": job.mime_type,
                        "sizeBytes": job.size_bytes,
                        "purpose": "TICKET_ATTACHMENT",
                        "ticketId": job.ticket_id,
                    },
                )
            except ApiError as exc:
                if self._special(exc, report):
                    raise _Stop from exc
                if exc.transient:
                    self._upload_later(report, job.attachment_id, exc)
                    if isinstance(exc, ServerUnreachable) or exc.status == 429:
                        raise _Stop from exc  # nothing else will get through either
                    continue
                # the type, the size or the ticket is refused: it never will be accepted
                self.replica.upload_refused(job.attachment_id, exc.message)
                report.uploads_refused += 1
                freed += 1
                continue
            if not isinstance(intent, Mapping) or not intent.get("uploadUrl"):
                report.fail(Outcome.REFUSED, "The server's answer to an upload was unreadable.")
                continue
            headers = intent.get("headers") or {"Content-Type": job.mime_type}
            try:
                self.client.upload(
                    str(intent["uploadUrl"]),
                    _read_chunks(path),
                    size=job.size_bytes,
                    headers={str(k): str(v) for k, v in headers.items()},
                )
            except ApiError as exc:
                if exc.status in (413, 415, 422):
                    # the bytes are not what was declared, or not allowed: for good
                    self.replica.upload_refused(job.attachment_id, exc.message)
                    report.uploads_refused += 1
                    freed += 1
                else:
                    # no answer, a server error, an expired or spent link: presign again
                    # at the next try (a link works once; the server cleans up the rest)
                    self._upload_later(report, job.attachment_id, exc)
                continue
            self.replica.record_upload(job.attachment_id, str(intent["storageKey"]))
            report.uploaded += 1
            freed += 1
        return freed

    def _upload_later(self, report: SyncReport, attachment_id: str, exc: ApiError) -> None:
        retry_at = self.replica.upload_failed(
            attachment_id, exc.message, now=self.clock(), retry_after=exc.retry_after
        )
        report.retry_at = _earliest(report.retry_at, retry_at)
        text = f"A file could not be uploaded ({exc.message}); it will be tried again."
        if isinstance(exc, ServerUnreachable):
            report.fail(Outcome.OFFLINE, text)
        else:
            report.fail(Outcome.SERVER_BUSY, text)

    # ---------------------------------------------------------------- attachments

    def fetch_attachment(self, attachment_id: str) -> Path:
        """The attachment's file on this computer: from the content store, or downloaded
        now (``GET /api/tickets/{id}/attachments/{attachmentId}/download``) into it, its
        SHA-256 checked. Raises ``ApiError`` (offline, refused) or ``ReplicaError`` (not
        in the replica, not yet on the server, the bytes are not the ones expected)."""
        with self._lock:
            local = self.replica.attachment_path(attachment_id)
            if local is not None:
                return local
            row = self.replica.row("ticket_attachments", attachment_id)
            if row is None or not row.synced:
                raise ReplicaError("That attachment is not on the server yet")
            sha256 = str(row.data.get("sha256") or "") or None
            ticket_id = str(row.data.get("ticketId"))
            with self.replica.content_writer(expect_sha256=sha256) as writer:
                self.client.download(
                    f"/api/tickets/{ticket_id}/attachments/{attachment_id}/download",
                    writer.write,
                )
                stored, _ = writer.commit()
            return self.replica.content_path(stored)

    # ---------------------------------------------------------------- pull

    def _pull(
        self,
        report: SyncReport,
        progress: Progress | None,
        cancelled: Cancelled | None,
        *,
        redownload: bool = False,
    ) -> None:
        """Pull until ``hasMore`` is false. ``redownload``: start from no cursor (a verify
        repair); a 410 on the way does the same (a resync)."""
        #: ids received per table since a full download began in this sync (the sweep)
        received: dict[str, set[str]] | None = None
        if redownload:
            self._merge(report, self.replica.reset_cursor())
            received = {}
        while True:
            self._check_cancelled(report, cancelled)
            cursor = self.replica.cursor
            body = {
                "protocolVersion": wire.PROTOCOL_VERSION,
                "clientVersion": __version__,
                "deviceId": self.replica.device_id,
                "cursor": cursor,
                "limit": self.pull_limit,
            }
            try:
                data = self.client.request("POST", "/api/sync/pull", json=body)
                page = PullPage.from_wire(data)
            except ApiError as exc:
                if cursor is not None and received is None and _needs_resync(exc):
                    # The cursor is too old (tombstones purged) or unknown to the server:
                    # download everything again; the outbox and verdicts stay.
                    self._merge(report, self.replica.reset_cursor())
                    report.resynced = True
                    received = {}
                    continue
                self._failed(report, exc, "download the changes")
            except WireError as exc:
                report.fail(Outcome.REFUSED, f"The server's changes were unreadable: {exc}")
                raise _Stop from exc
            if page.wipe:
                self._wipe(report)
                raise _Stop
            applied = self.replica.apply_page(page, synced_at=_iso(self.clock()))
            self._merge(report, applied.changes)
            report.pages += 1
            report.pulled_rows += sum(len(t.rows) for t in page.changes)
            if received is not None:
                for table_rows in page.changes:
                    received.setdefault(table_rows.table, set()).update(
                        str(r["id"]) for r in table_rows.rows if not r.get("deletedAt")
                    )
            if progress is not None:
                progress("pull", report.pulled_rows, None)
            if not applied.has_more:
                break
        self._failures = 0
        self._retry_at = None
        if received is not None:
            # A full download sends no removals: what the replica held before it and did
            # not receive again has left the scope (kept while edits of it wait).
            self._merge(report, self.replica.retain_only(received))

    # ---------------------------------------------------------------- verify

    def _verify(
        self, report: SyncReport, progress: Progress | None, cancelled: Cancelled | None
    ) -> None:
        """Compare the replica with what the server says its scope holds (guarantee 13);
        tables that differ are repaired by downloading the scope again."""
        digests = self._server_digests(report, progress, cancelled)
        if digests is None:
            return
        report.verified = True
        differ = [
            table
            for table, (count, sha256) in sorted(digests.items())
            if self.replica.verify_digest(table) != (count, sha256)
        ]
        if not differ:
            return
        report.mismatched = differ
        self._pull(report, progress, cancelled, redownload=True)
        self._hydrate(report, progress, cancelled)
        digests = self._server_digests(report, progress, cancelled)
        if digests is None:
            return
        report.still_mismatched = [
            table
            for table, (count, sha256) in sorted(digests.items())
            if self.replica.verify_digest(table) != (count, sha256)
        ]
        if report.still_mismatched:
            report.fail(
                Outcome.REFUSED,
                "This computer's copy still differs from the server after downloading it "
                f"again ({', '.join(report.still_mismatched)}); tell your administrator.",
            )

    def _server_digests(
        self, report: SyncReport, progress: Progress | None, cancelled: Cancelled | None
    ) -> dict[str, tuple[int, str]] | None:
        """The server's (count, sha256) per table as of the replica's cursor; when the
        server moved on meanwhile, pull once more and ask again. None: still moving."""
        for attempt in range(2):
            self._check_cancelled(report, cancelled)
            body = {
                "protocolVersion": wire.PROTOCOL_VERSION,
                "clientVersion": __version__,
                "deviceId": self.replica.device_id,
                "cursor": self.replica.cursor,
            }
            try:
                data = self.client.request("POST", "/api/sync/verify", json=body)
            except ApiError as exc:
                self._failed(report, exc, "check this computer's copy")
            if not isinstance(data, Mapping) or not isinstance(data.get("tables"), list):
                report.fail(Outcome.REFUSED, "The server's check of this copy was unreadable.")
                raise _Stop
            if not data.get("stale"):
                return {
                    str(t["table"]): (int(t["count"]), str(t["sha256"]))
                    for t in data["tables"]
                    if isinstance(t, Mapping)
                }
            if attempt == 0:
                self._pull(report, progress, cancelled)
        return None  # others keep writing: the next verify will do

    # ---------------------------------------------------------------- hydrate

    def _hydrate(
        self, report: SyncReport, progress: Progress | None, cancelled: Cancelled | None
    ) -> None:
        total = self.replica.status().hydrate_queued
        done = 0
        while True:
            self._check_cancelled(report, cancelled)
            ids = self.replica.hydrate_queue(MAX_HYDRATE)
            if not ids:
                return
            body = {
                "protocolVersion": wire.PROTOCOL_VERSION,
                "clientVersion": __version__,
                "deviceId": self.replica.device_id,
                "ticketIds": ids,
            }
            try:
                data = self.client.request("POST", "/api/sync/hydrate", json=body)
                changes = self.replica.apply_hydration(data, ids)
            except ApiError as exc:
                self._failed(report, exc, "bring the history of new tickets")
            except WireError as exc:
                report.fail(Outcome.REFUSED, f"The server's ticket history was unreadable: {exc}")
                raise _Stop from exc
            self._merge(report, changes)
            report.hydrated += len(changes.written.get("tickets", ()))
            done += len(ids)
            if progress is not None:
                progress("hydrate", done, max(total, done))

    # ---------------------------------------------------------------- answers

    def _special(self, exc: ApiError, report: SyncReport) -> bool:
        """The answers that stop a sync whatever the step: wipe, upgrade, signed out.
        True when ``exc`` was one of them (the report says so)."""
        if exc.code == DEVICE_WIPED:
            self._wipe(report)
            return True
        if exc.code == ErrorCode.UPGRADE_REQUIRED or exc.status == 426:
            details = exc.details if isinstance(exc.details, Mapping) else {}
            latest = details.get("latestClientVersion")
            text = "This app is too old for the server: update District Resolve"
            text += f" (to version {latest} or later)" if latest else ""
            text += ". Nothing was lost: your changes are kept and will be sent after the update."
            report.fail(Outcome.UPGRADE_REQUIRED, text)
            return True
        if exc.session_ended or exc.status == 401:
            report.fail(Outcome.SIGNED_OUT, _signed_out_text(exc))
            return True
        return False

    def _failed(self, report: SyncReport, exc: ApiError, doing: str) -> NoReturn:
        """A pull or hydrate failed: say why, schedule a retry when it may pass, stop."""
        if self._special(exc, report):
            raise _Stop from exc
        if exc.transient:
            self._failures += 1
            delay = backoff_delay(self._failures, self.replica.rng)
            if exc.retry_after is not None:
                delay = min(max(delay, exc.retry_after), max(BACKOFF_MAX, exc.retry_after))
            self._retry_at = self.clock() + delay
            report.retry_at = _earliest(report.retry_at, self._retry_at)
            if isinstance(exc, ServerUnreachable):
                report.fail(Outcome.OFFLINE, _offline_text(exc))
            else:
                report.fail(Outcome.SERVER_BUSY, _busy_text(exc))
        else:
            report.fail(Outcome.REFUSED, f"The server refused to {doing}: {exc.message}")
        raise _Stop from exc

    def _wipe(self, report: SyncReport) -> None:
        self.replica.wipe()
        self.wiped = True
        report.wiped = True
        report.fail(Outcome.WIPED, _WIPED_TEXT)
        if self.on_wipe is not None:
            self.on_wipe()
            return
        try:
            self.client.logout()
        except ApiError:
            self.client.forget()

    def _check_cancelled(self, report: SyncReport, cancelled: Cancelled | None) -> None:
        if cancelled is not None and cancelled():
            report.fail(
                Outcome.CANCELLED, "Sync stopped before it finished; the next one carries on."
            )
            raise _Stop

    def _merge(self, report: SyncReport, changes: Changes) -> None:
        for table, ids in changes.written.items():
            report.changes.written.setdefault(table, set()).update(ids)
        for table, ids in changes.removed.items():
            report.removed += len(ids)
            for row_id in ids:
                report.changes.deleted(table, row_id)
        report.changes.outbox |= changes.outbox
        report.changes.verdicts |= changes.verdicts
        report.changes.state |= changes.state

    def _finish(self, report: SyncReport) -> SyncReport:
        report.finished_at = _iso(self.clock())
        if not self.wiped:
            status = self.replica.status()
            report.pending = status.pending
            report.uploads_waiting = status.uploads_waiting
            due = status.next_attempt_at
            if status.pending and report.retry_at is None and due and due > self.clock():
                report.retry_at = due
        self.last_report = report
        return report


# --------------------------------------------------------------------------- helpers

_WIPED_TEXT = (
    "Your administrator removed this computer's copy of your tickets and signed you out. "
    "Sign in again to continue."
)


def _upload_refusal_text(file_name: str, error: str | None) -> str:
    return f"The file {file_name} could not be uploaded: {error or 'the server refused it'}."


def _read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            yield chunk


def _needs_resync(exc: ApiError) -> bool:
    if exc.code == ErrorCode.RESYNC_REQUIRED:
        return True
    # A cursor this server never gave out (the server was replaced or restored).
    details = exc.details if isinstance(exc.details, Mapping) else {}
    return exc.code == ErrorCode.VALIDATION_ERROR and details.get("field") == "cursor"


def _offline_text(exc: ApiError) -> str:
    return f"{exc.message}. Working offline: your changes are kept and will be sent later."


def _busy_text(exc: ApiError) -> str:
    if exc.status == 429:
        return "The server asked us to slow down; sync will try again shortly."
    return f"The server had a problem ({exc.message}); sync will try again shortly."


def _signed_out_text(exc: ApiError) -> str:
    if exc.code == ErrorCode.ACCOUNT_DISABLED:
        why = "Your account has been disabled"
    elif exc.code == ErrorCode.ORGANIZATION_SUSPENDED:
        why = "Your organization's account is suspended"
    else:
        why = "Your session has ended"
    return f"{why}: sign in again to sync. Your copy and your unsent changes are kept."


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")
