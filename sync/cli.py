"""``resolve-sync``: the headless sync client.

Sign in (``login``, ``whoami``, ``logout``, ``check``), sync the replica (``sync``,
``status``), read it (``tickets``, ``ticket show``, ``conflicts``) and edit it offline
(``ticket set``, ``ticket comment``, ``ticket new``, ``ticket attach``, ``asset link``,
``asset unlink``, ``part use``, ``resolve``): edits are written to the replica and its
outbox at once and sent by the next ``sync`` (or at once with ``--sync``). Documented
in ``docs/sync.md``.

Exit codes:

- 0 done; also when the server could not be reached during ``sync`` (or ``--sync``)
  and the edits stay queued (a message says so)
- 1 refused: by the server (or it could not be reached by ``check``, ``login``,
  ``whoami``), or a local edit the replica refuses (unknown ticket, a status move the
  workflow does not allow)
- 2 bad usage
- 3 not signed in, or the stored sign-in has ended (sign in again)
- 4 this app is too old for the server: update it (nothing was dropped)
- 5 the administrator ordered a remote wipe: the replica and the sign-in are gone
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from common import __version__
from common.errors import ErrorCode
from sync.client import DEFAULT_SERVER_URL, ApiClient, ApiError, normalize_server_url
from sync.credentials import (
    MEMORY_ONLY_NOTICE,
    CredentialStore,
    LastSignIn,
    data_dir,
    file_notice,
)
from sync.engine import Outcome, SyncEngine, SyncReport
from sync.replica import EditRefused, Replica, ReplicaError, ReplicaRow, replica_path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_SIGNED_IN = 3
EXIT_UPGRADE_REQUIRED = 4
EXIT_WIPED = 5

SERVER_ENV = "RESOLVE_SERVER_URL"

#: ``ticket set`` fields: command-line name -> wire name (``status`` is a transition)
SETTABLE = {"title": "title", "priority": "priority", "assignee": "assigneeId"}
PRIORITIES = ("low", "medium", "high", "critical")

_EXIT_BY_OUTCOME = {
    Outcome.OK: EXIT_OK,
    Outcome.OFFLINE: EXIT_OK,
    Outcome.SERVER_BUSY: EXIT_OK,
    Outcome.CANCELLED: EXIT_OK,
    Outcome.REFUSED: EXIT_FAILED,
    Outcome.SIGNED_OUT: EXIT_NOT_SIGNED_IN,
    Outcome.UPGRADE_REQUIRED: EXIT_UPGRADE_REQUIRED,
    Outcome.WIPED: EXIT_WIPED,
}


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resolve-sync",
        description="District Resolve sync client: sign in, sync your tickets, work offline.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sub: argparse.ArgumentParser, *, email: bool, json_out: bool) -> None:
        sub.add_argument(
            "--server",
            metavar="URL",
            help=f"server address (default: ${SERVER_ENV}, the last sign-in's server, "
            f"or {DEFAULT_SERVER_URL})",
        )
        sub.add_argument(
            "--data-dir",
            type=Path,
            metavar="DIR",
            help="where the replica and sign-in live (default: the platform's user data "
            "directory, or $RESOLVE_CLIENT_DIR)",
        )
        if email:
            sub.add_argument("--email", help="your sign-in email (default: the last sign-in's)")
        if json_out:
            sub.add_argument("--json", action="store_true", help="print JSON")

    def command(
        parent: Any, name: str, help: str, *, email: bool = True, json_out: bool = False
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
        common(sub, email=email, json_out=json_out)
        return sub

    def with_sync(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--sync", action="store_true", help="sync at once (offline: stays queued)")

    command(
        commands, "check", "Check that the server is up and its database migrated.", email=False
    )
    login = command(commands, "login", "Sign in and keep the session (keyring, or a private file).")
    login.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input "
        "(and an authenticator code from the next, when asked for)",
    )
    login.add_argument("--mfa-code", metavar="CODE", help="code from your authenticator app")
    command(commands, "whoami", "Show who the stored sign-in belongs to.")
    command(
        commands,
        "logout",
        "End the session on the server and forget it here (the replica and its unsent "
        "changes are kept for the next sign-in).",
    )

    sync_ = command(
        commands, "sync", "Send queued changes, then download what changed.", json_out=True
    )
    sync_.add_argument(
        "--verify",
        action="store_true",
        help="then check the copy against the server and repair it if it differs",
    )
    command(
        commands, "status", "Queued changes, last sync, conflicts and rejections.", json_out=True
    )

    tickets = command(commands, "tickets", "List the tickets in the replica.", json_out=True)
    tickets.add_argument("--status", help="only these statuses (comma-separated)")
    tickets.add_argument("--search", help="words of the number, title or description")
    tickets.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")

    ticket = commands.add_parser("ticket", help="Show, change, comment on or create a ticket.")
    actions = ticket.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = command(actions, "show", "A ticket with its timeline.", json_out=True)
    show.add_argument("ticket", metavar="ID", help="ticket id or number (INC-000042)")
    set_ = command(actions, "set", "Change fields: title, priority, status, assignee.")
    set_.add_argument("ticket", metavar="ID", help="ticket id or number")
    set_.add_argument(
        "fields",
        nargs="+",
        metavar="FIELD=VALUE",
        help="title=…, priority=low|medium|high|critical, status=…, assignee=me|none|EMAIL|USER_ID",
    )
    set_.add_argument("--resolution-notes", help="with status=resolved: what was done")
    set_.add_argument("--note", help="with status=…: a note for the history")
    with_sync(set_)
    comment = command(actions, "comment", "Add a comment (or a staff note with --internal).")
    comment.add_argument("ticket", metavar="ID", help="ticket id or number")
    comment.add_argument("text", metavar="TEXT")
    comment.add_argument("--internal", action="store_true", help="a staff-only note")
    comment.add_argument("--minutes", type=int, help="time worked, in minutes")
    with_sync(comment)
    attach = command(actions, "attach", "Attach a file (uploaded by the next sync, then attached).")
    attach.add_argument("ticket", metavar="ID", help="ticket id or number")
    attach.add_argument("file", metavar="FILE", type=Path)
    attach.add_argument("--internal", action="store_true", help="staff only")
    attach.add_argument("--type", metavar="MIME", help="the file's type (default: from its name)")
    with_sync(attach)
    fetch = command(
        actions, "file", "Print where an attachment's file is, downloading it when needed."
    )
    fetch.add_argument("attachment", metavar="ATTACHMENT_ID")
    new = command(actions, "new", "Create a ticket (numbered when it reaches the server).")
    new.add_argument("--title", required=True)
    new.add_argument("--description", default="")
    new.add_argument("--room", metavar="ID", help="the room (its building and site follow)")
    with_sync(new)

    part = commands.add_parser("part", help="Record parts used on a ticket.")
    part_actions = part.add_subparsers(dest="action", required=True, metavar="ACTION")
    use = command(part_actions, "use", "Record parts used from a stock location.")
    use.add_argument("ticket", metavar="TICKET", help="ticket id or number")
    use.add_argument("part", metavar="PART", help="part id or part number")
    use.add_argument("quantity", metavar="QTY", type=int)
    use.add_argument("--location", required=True, metavar="ID", help="stock location id or name")
    with_sync(use)

    asset = commands.add_parser("asset", help="Link devices to tickets, or unlink them.")
    asset_actions = asset.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("link", "Link a device to a ticket."), ("unlink", "Unlink a device.")):
        sub = command(asset_actions, name, text)
        sub.add_argument("ticket", metavar="TICKET", help="ticket id or number")
        sub.add_argument("asset", metavar="ASSET", help="device id, asset tag or serial number")
        with_sync(sub)

    command(commands, "conflicts", "Open conflicts and rejected changes.", json_out=True)
    resolve = command(commands, "resolve", "Resolve a conflict: keep your value or the server's.")
    resolve.add_argument("conflict", metavar="CONFLICT_ID")
    resolve.add_argument("--keep", required=True, choices=("mine", "server"))
    with_sync(resolve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _resolve_common(args)
    except ValueError as exc:
        print(f"resolve-sync: {exc}", file=sys.stderr)
        return EXIT_USAGE
    name = args.command if not getattr(args, "action", None) else f"{args.command} {args.action}"
    handler: Callable[[argparse.Namespace], int] = {
        "check": _check,
        "login": _login,
        "whoami": _whoami,
        "logout": _logout,
        "sync": _sync,
        "status": _status,
        "tickets": _tickets,
        "ticket show": _ticket_show,
        "ticket set": _ticket_set,
        "ticket comment": _ticket_comment,
        "ticket new": _ticket_new,
        "ticket attach": _ticket_attach,
        "ticket file": _ticket_file,
        "asset link": _asset_link,
        "asset unlink": _asset_link,
        "part use": _part_use,
        "conflicts": _conflicts,
        "resolve": _resolve,
    }[name]
    try:
        return handler(args)
    except CliError as exc:
        print(f"resolve-sync: {exc}", file=sys.stderr)
        return exc.exit_code
    except EditRefused as exc:
        print(f"resolve-sync: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except ReplicaError as exc:
        print(f"resolve-sync: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ApiError as exc:
        print(f"resolve-sync: {_describe(exc)}", file=sys.stderr)
        return EXIT_NOT_SIGNED_IN if exc.session_ended else EXIT_FAILED
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


def _resolve_common(args: argparse.Namespace) -> None:
    """Fill in --data-dir, --server and --email from the environment and the last sign-in."""
    args.data_dir = Path(args.data_dir) if args.data_dir else data_dir()
    last = LastSignIn.load(args.data_dir)
    server = args.server or os.environ.get(SERVER_ENV) or (last.server_url if last else None)
    args.server = normalize_server_url(server or DEFAULT_SERVER_URL)
    if hasattr(args, "email"):
        if args.email:
            args.email = args.email.strip().lower()
        elif last is not None and normalize_server_url(last.server_url) == args.server:
            args.email = last.email
    args.last = last


def _describe(exc: ApiError) -> str:
    text = exc.message
    if exc.status is not None:
        text += f" ({exc.code}"
        text += f", request {exc.request_id})" if exc.request_id else ")"
    return text


# --------------------------------------------------------------------------- sign-in


def _store(args: argparse.Namespace) -> CredentialStore:
    return CredentialStore(fallback_dir=args.data_dir)


def _need_email(args: argparse.Namespace) -> str:
    if not args.email:
        raise CliError(
            f"not signed in to {args.server}: run `resolve-sync login --server {args.server} "
            "--email YOU@DISTRICT`",
            EXIT_NOT_SIGNED_IN,
        )
    return str(args.email)


def _check(args: argparse.Namespace) -> int:
    with ApiClient(args.server) as client:
        health = client.health()
    print(f"Server {args.server}: {health.status} (version {health.version})")
    for name, check in health.checks.items():
        detail = f"  {check.detail}" if check.detail else ""
        print(f"  {name:<11} {check.status}{detail}")
    if health.current_revision or health.head_revision:
        print(f"  schema      {health.current_revision} (code expects {health.head_revision})")
    return EXIT_OK if health.usable else EXIT_FAILED


def _login(args: argparse.Namespace) -> int:
    if not args.email:
        raise CliError("--email is required to sign in", EXIT_USAGE)
    store = _store(args)
    password = _read_password(args)
    if not password:
        raise CliError("no password given", EXIT_USAGE)
    with ApiClient(args.server, on_tokens=store.listener(args.server, args.email)) as client:
        try:
            result = client.login(args.email, password, args.mfa_code)
        except ApiError as exc:
            if exc.code != ErrorCode.MFA_REQUIRED or args.mfa_code:
                raise
            code = _ask("Authenticator code: ")
            if not code:
                raise CliError(exc.message) from exc
            result = client.login(args.email, password, code)
    LastSignIn(args.server, args.email, result.user.id).save(args.data_dir)
    print(f"Signed in to {args.server} as {result.user.display_name} <{result.user.email}>.")
    if result.mfa_enrollment_required:
        print(
            "Your organization requires two-factor sign-in for administrators: "
            "turn it on before using this account."
        )
    if store.memory_only:
        print(f"Note: {MEMORY_ONLY_NOTICE}", file=sys.stderr)
    elif store.in_file and store.file_path is not None:
        print(f"Note: {file_notice(store.file_path)}", file=sys.stderr)
    return EXIT_OK


def _whoami(args: argparse.Namespace) -> int:
    email = _need_email(args)
    store = _store(args)
    token = _stored_token(store, args)
    with ApiClient(args.server, on_tokens=store.listener(args.server, email)) as client:
        client.resume(token)
        try:
            me = client.me()
        except ApiError as exc:
            if exc.session_ended:
                store.delete(args.server, email)
                raise CliError(
                    f"{exc.message}: sign in again with "
                    f"`resolve-sync login --server {args.server} --email {email}`",
                    EXIT_NOT_SIGNED_IN,
                ) from exc
            raise
    user = me.user
    print(f"{user.display_name} <{user.email}>")
    print(f"  role          {user.role}")
    if me.organization is not None:
        print(f"  organization  {me.organization.name} ({me.organization.slug})")
    else:
        print("  organization  (none: platform account)")
    print(f"  server        {args.server}")
    print(f"  two-factor    {'on' if user.mfa_enabled else 'off'}")
    return EXIT_OK


def _logout(args: argparse.Namespace) -> int:
    email = _need_email(args)
    store = _store(args)
    token = store.load(args.server, email)
    if token is None:
        print(f"Not signed in to {args.server} as {email}.")
        return EXIT_OK
    with ApiClient(args.server) as client:
        client.resume(token)
        try:
            client.logout()
        except ApiError as exc:
            store.delete(args.server, email)
            raise CliError(
                "Forgot the sign-in on this computer, but the server did not end the "
                f"session: {_describe(exc)}"
            ) from exc
    store.delete(args.server, email)
    print(f"Signed out of {args.server}.")
    pending = _pending_in_replica(args, email)
    if pending:
        print(
            f"{pending} change(s) made here are kept unsent; they go with the next sync "
            "after you sign in again."
        )
    return EXIT_OK


def _pending_in_replica(args: argparse.Namespace, email: str) -> int:
    user_id = _known_user_id(args, email)
    if user_id is None:
        return 0
    path = replica_path(args.data_dir, args.server, user_id)
    if not path.exists():
        return 0
    with Replica.open(path, server_url=args.server, user_id=user_id) as replica:
        return replica.status().pending


# --------------------------------------------------------------------------- the replica


@dataclass
class Session:
    """The signed-in account of a command: its stored token and its replica."""

    server: str
    email: str
    user_id: str
    store: CredentialStore
    token: str
    replica: Replica

    def client(self) -> ApiClient:
        client = ApiClient(self.server, on_tokens=self.store.listener(self.server, self.email))
        client.resume(self.token)
        return client


def _known_user_id(args: argparse.Namespace, email: str) -> str | None:
    last: LastSignIn | None = args.last
    if (
        last is not None
        and last.user_id
        and normalize_server_url(last.server_url) == args.server
        and last.email.strip().lower() == email
    ):
        return last.user_id
    return None


@contextmanager
def _session(args: argparse.Namespace) -> Iterator[Session]:
    """The stored sign-in and the replica it names. Works offline: the user id was kept
    at sign-in. Without a stored sign-in (never signed in, signed out) nothing opens."""
    email = _need_email(args)
    store = _store(args)
    token = _stored_token(store, args)
    user_id = _known_user_id(args, email)
    if user_id is None:  # signed in by an older version: ask the server once
        with ApiClient(args.server, on_tokens=store.listener(args.server, email)) as client:
            client.resume(token)
            user_id = client.me().user.id
        token = store.load(args.server, email) or token
        LastSignIn(args.server, email, user_id).save(args.data_dir)
    path = replica_path(args.data_dir, args.server, user_id)
    with Replica.open(path, server_url=args.server, user_id=user_id) as replica:
        yield Session(args.server, email, user_id, store, token, replica)


def _run_sync(session: Session, *, show_progress: bool, verify: bool = False) -> SyncReport:
    def progress(phase: str, done: int, total: int | None) -> None:
        of = f"/{total}" if total else ""
        print(f"\r{phase}: {done}{of}   ", end="", file=sys.stderr, flush=True)

    with session.client() as client:
        engine = SyncEngine(session.replica, client)
        report = engine.sync(
            progress=progress if show_progress else None, retry_now=True, verify=verify
        )
    if show_progress:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)
    return report


def _print_report(report: SyncReport, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary())
        for text in report.rejections:
            print(f"  ! {text}")
    code = _EXIT_BY_OUTCOME[report.outcome]
    if report.outcome is Outcome.SIGNED_OUT:
        print("resolve-sync: sign in again with `resolve-sync login`", file=sys.stderr)
    return code


def _after_edit(args: argparse.Namespace, session: Session, what: str) -> int:
    pending = session.replica.status().pending
    print(f"{what} Saved here; {pending} change(s) wait to be sent.")
    if not getattr(args, "sync", False):
        print("Run `resolve-sync sync` to send them.")
        return EXIT_OK
    return _print_report(_run_sync(session, show_progress=False), as_json=False)


# --------------------------------------------------------------------------- commands


def _sync(args: argparse.Namespace) -> int:
    with _session(args) as session:
        report = _run_sync(
            session, show_progress=sys.stderr.isatty() and not args.json, verify=args.verify
        )
        return _print_report(report, as_json=args.json)


def _status(args: argparse.Namespace) -> int:
    with _session(args) as session:
        status = session.replica.status()
        outbox = session.replica.outbox()
        uploads = session.replica.uploads()
    data = {
        "server": session.server,
        "email": session.email,
        "userId": session.user_id,
        "deviceId": status.device_id,
        "replica": str(session.replica.path),
        "lastSyncAt": status.last_sync_at,
        "pending": status.pending,
        "nextAttemptAt": _iso(status.next_attempt_at) if status.next_attempt_at else None,
        "lastError": status.last_error,
        "openConflicts": status.open_conflicts,
        "rejections": status.rejections,
        "conflicts": status.conflicts,
        "hydrateQueued": status.hydrate_queued,
        "pendingRemovals": status.pending_removals,
        "uploadsWaiting": status.uploads_waiting,
        "uploadError": status.upload_error,
        "uploads": [
            {
                "attachmentId": u.attachment_id,
                "ticketId": u.ticket_id,
                "fileName": u.file_name,
                "sizeBytes": u.size_bytes,
                "state": u.state,
                "attempts": u.attempts,
                "lastError": u.last_error,
            }
            for u in uploads
        ],
        "outbox": [
            {
                "seq": m.seq,
                "kind": m.kind,
                "ticketId": m.ticket_id,
                "at": m.at,
                "attempts": m.attempts,
                "lastError": m.last_error,
            }
            for m in outbox
        ],
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    print(f"{session.email} on {session.server}")
    print(f"  last sync        {status.last_sync_at or 'never'}")
    print(f"  waiting to send  {status.pending}")
    if status.pending and status.next_attempt_at:
        print(f"  next try         {_iso(status.next_attempt_at)}")
    if status.last_error:
        print(f"  last error       {status.last_error}")
    if status.uploads_waiting:
        print(f"  files to upload  {status.uploads_waiting}")
    if status.upload_error:
        print(f"  upload error     {status.upload_error}")
    print(f"  open conflicts   {status.open_conflicts}")
    print(f"  rejected changes {status.rejections}")
    for m in outbox:
        print(f"    #{m.seq} {m.kind} {m.ticket_id or ''} (tried {m.attempts}x)")
    return EXIT_OK


def _tickets(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1", EXIT_USAGE)
    statuses = [s.strip() for s in args.status.split(",") if s.strip()] if args.status else None
    with _session(args) as session:
        rows = session.replica.tickets(status=statuses, search=args.search, limit=args.limit)
    if args.json:
        print(json.dumps([_ticket_json(r) for r in rows], indent=2))
        return EXIT_OK
    if not rows:
        print("No tickets.")
        return EXIT_OK
    for row in rows:
        d = row.data
        mark = "*" if row.pending else " "
        print(
            f"{mark}{row.display_number:<22} {d.get('status') or '':<21} "
            f"{d.get('priority') or '-':<9} {d.get('title') or ''}"
        )
    if any(r.pending for r in rows):
        print("* changed here, not yet sent")
    return EXIT_OK


def _ticket_show(args: argparse.Namespace) -> int:
    with _session(args) as session:
        row = _find_ticket(session.replica, args.ticket)
        detail = session.replica.ticket(row.id)
        users = _names(session.replica)
        assert detail is not None
        files = {a.id: session.replica.attachment_path(a.id) for a in detail.attachments}
        devices = {a.id: a for a in detail.assets}
    if args.json:
        print(
            json.dumps(
                {
                    **_ticket_json(detail.ticket),
                    "timeline": [
                        {"kind": e.kind, "at": e.at, **dict(e.row.data)} for e in detail.timeline
                    ],
                    "attachments": [
                        {
                            **dict(a.data),
                            "synced": a.synced,
                            "local": files[a.id] is not None,
                            "path": str(files[a.id]) if files[a.id] is not None else None,
                        }
                        for a in detail.attachments
                    ],
                    "assets": [
                        {
                            "assetId": link.data.get("assetId"),
                            "synced": link.synced,
                            "asset": dict(devices[str(link.data.get("assetId"))].data)
                            if str(link.data.get("assetId")) in devices
                            else None,
                        }
                        for link in detail.asset_links
                    ],
                    "partsUsed": [dict(r.data) for r in detail.part_movements],
                    "openConflicts": [dict(r.data) for r in detail.open_conflicts],
                    "pending": [dict(m.wire) for m in detail.pending],
                },
                indent=2,
            )
        )
        return EXIT_OK
    d = detail.ticket.data
    print(f"{detail.ticket.display_number}  {d.get('title')}")
    print(f"  id        {detail.ticket.id}")
    print(f"  status    {d.get('status')}    priority {d.get('priority') or '-'}")
    print(f"  assignee  {users.get(str(d.get('assigneeId')), d.get('assigneeId') or '-')}")
    print(f"  requester {users.get(str(d.get('requesterId')), d.get('requesterId') or '-')}")
    if d.get("description"):
        print(f"\n{d['description']}")
    if detail.timeline:
        print("\nTimeline:")
    for entry in detail.timeline:
        data = entry.row.data
        when = entry.at[:16].replace("T", " ")
        if entry.kind == "comment":
            who = users.get(str(data.get("authorId")), "?")
            note = " (internal)" if data.get("isInternal") else ""
            sent = "" if entry.row.synced else " [not yet sent]"
            print(f"  {when}  {who}{note}{sent}: {data.get('body')}")
        else:
            print(f"  {when}  {data.get('kind')}")
    if detail.attachments:
        print("\nAttachments:")
    for a in detail.attachments:
        data = a.data
        where = "on this computer" if files[a.id] is not None else "not downloaded"
        sent = "" if a.synced else " [not yet sent]"
        note = " (internal)" if data.get("isInternal") else ""
        print(
            f"  {a.id}  {data.get('fileName')}{note}  {_size(data.get('sizeBytes'))}  {where}{sent}"
        )
    if detail.asset_links:
        print("\nDevices:")
    for link in detail.asset_links:
        asset_id = str(link.data.get("assetId"))
        device = devices.get(asset_id)
        label = device.data.get("assetTag") or device.data.get("name") if device else None
        sent = "" if link.synced else " [not yet sent]"
        print(f"  {asset_id}  {label or ''}{sent}")
    for conflict in detail.open_conflicts:
        c = conflict.data
        print(
            f"\n  conflict {conflict.id}: {c.get('field')} mine={c.get('mine')!r} "
            f"server={c.get('server')!r}"
        )
    if detail.pending:
        print(f"\n{len(detail.pending)} change(s) of this ticket wait to be sent.")
    return EXIT_OK


def _ticket_set(args: argparse.Namespace) -> int:
    updates: dict[str, Any] = {}
    status: str | None = None
    for item in args.fields:
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise CliError(f"{item!r}: write FIELD=VALUE", EXIT_USAGE)
        if name == "status":
            status = value.strip()
        elif name in SETTABLE:
            updates[name] = value
        else:
            raise CliError(
                f"{name!r} cannot be set; use title, priority, status or assignee", EXIT_USAGE
            )
    if "priority" in updates and updates["priority"] not in PRIORITIES:
        raise CliError(f"priority must be one of {', '.join(PRIORITIES)}", EXIT_USAGE)
    if (args.resolution_notes or args.note) and status is None:
        raise CliError("--resolution-notes and --note go with status=…", EXIT_USAGE)
    with _session(args) as session:
        replica = session.replica
        row = _find_ticket(replica, args.ticket)
        wire_changes = {SETTABLE[k]: v for k, v in updates.items()}
        if "assigneeId" in wire_changes:
            wire_changes["assigneeId"] = _user_ref(session, str(wire_changes["assigneeId"]))
        done = []
        if wire_changes and replica.update_ticket(row.id, wire_changes):
            done.append(", ".join(sorted(updates)))
        if status is not None:
            replica.transition_ticket(
                row.id, status, note=args.note, resolution_notes=args.resolution_notes
            )
            done.append(f"status {status}")
        if not done:
            print(f"{row.display_number}: nothing to change.")
            return EXIT_OK
        return _after_edit(args, session, f"{row.display_number}: changed {'; '.join(done)}.")


def _ticket_comment(args: argparse.Namespace) -> int:
    with _session(args) as session:
        row = _find_ticket(session.replica, args.ticket)
        session.replica.add_comment(row.id, args.text, args.internal, args.minutes)
        kind = "internal note" if args.internal else "comment"
        return _after_edit(args, session, f"{row.display_number}: {kind} added.")


def _ticket_new(args: argparse.Namespace) -> int:
    with _session(args) as session:
        replica = session.replica
        place: dict[str, Any] = {}
        if args.room:
            room = replica.row("rooms", args.room)
            if room is None:
                raise CliError(f"room {args.room} is not in the replica")
            building_id = room.data.get("buildingId")
            building = replica.row("buildings", str(building_id)) if building_id else None
            place = {
                "room_id": room.id,
                "building_id": building_id,
                "site_id": building.data.get("siteId") if building is not None else None,
            }
        changes = replica.create_ticket(args.title, args.description, **place)
        ticket_id = next(iter(changes.written.get("tickets", ())), None)
        return _after_edit(args, session, f"New ticket {ticket_id} (not yet numbered).")


def _ticket_attach(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        raise CliError(f"there is no file {path}", EXIT_USAGE)
    with _session(args) as session:
        row = _find_ticket(session.replica, args.ticket)
        session.replica.attach_file(row.id, path, path.name, args.type, args.internal)
        return _after_edit(
            args,
            session,
            f"{row.display_number}: {path.name} attached ({_size(path.stat().st_size)}); it is "
            "uploaded with the next sync.",
        )


def _ticket_file(args: argparse.Namespace) -> int:
    with _session(args) as session:
        local = session.replica.attachment_path(args.attachment)
        if local is None:
            with session.client() as client:
                local = SyncEngine(session.replica, client).fetch_attachment(args.attachment)
    print(local)
    return EXIT_OK


def _asset_link(args: argparse.Namespace) -> int:
    with _session(args) as session:
        replica = session.replica
        row = _find_ticket(replica, args.ticket)
        asset_id = _asset_ref(replica, args.asset)
        if args.action == "link":
            done = replica.link_asset(row.id, asset_id)
            what = "linked" if done else "already linked"
        else:
            done = replica.unlink_asset(row.id, asset_id)
            what = "unlinked" if done else "was not linked"
        text = f"{row.display_number}: device {args.asset} {what}."
        if not done:
            print(text)
            return EXIT_OK
        return _after_edit(args, session, text)


def _part_use(args: argparse.Namespace) -> int:
    if args.quantity < 1:
        raise CliError("QTY must be a whole number above 0", EXIT_USAGE)
    with _session(args) as session:
        replica = session.replica
        row = _find_ticket(replica, args.ticket)
        part = _lookup(replica, "parts", args.part, ("partNumber", "name"), "part")
        location = _lookup(replica, "stock_locations", args.location, ("name",), "stock location")
        replica.use_part(row.id, part.id, location.id, args.quantity)
        return _after_edit(
            args,
            session,
            f"{row.display_number}: {args.quantity} x {part.data.get('name') or part.id} used "
            f"from {location.data.get('name') or location.id}.",
        )


def _conflicts(args: argparse.Namespace) -> int:
    with _session(args) as session:
        replica = session.replica
        open_ = [r for r in replica.rows("sync_conflicts") if r.data.get("resolvedAt") is None]
        verdicts = replica.verdicts()
        numbers = {
            r.id: r.display_number
            for r in (replica.row("tickets", str(c.data.get("ticketId"))) for c in open_)
            if r is not None
        }
    rejected = [v for v in verdicts if v.verdict.value == "rejected"]
    if args.json:
        print(
            json.dumps(
                {
                    "conflicts": [dict(r.data) for r in open_],
                    "rejections": [
                        {
                            "mutationId": v.mutation_id,
                            "kind": v.kind,
                            "ticketId": v.ticket_id,
                            "code": v.code,
                            "message": v.message,
                            "judgedAt": v.judged_at,
                            "mutation": dict(v.mutation),
                        }
                        for v in rejected
                    ],
                },
                indent=2,
            )
        )
        return EXIT_OK
    if not open_ and not rejected:
        print("No conflicts or rejected changes.")
        return EXIT_OK
    for r in open_:
        c = r.data
        print(
            f"{r.id}  {numbers.get(str(c.get('ticketId')), c.get('ticketId'))}  {c.get('field')}: "
            f"mine={c.get('mine')!r} server={c.get('server')!r} (was {c.get('base')!r})"
        )
    if open_:
        print("Resolve with `resolve-sync resolve CONFLICT_ID --keep mine|server`.")
    for v in rejected:
        print(f"rejected #{v.seq} {v.kind}: {v.message or v.code}")
    return EXIT_OK


def _resolve(args: argparse.Namespace) -> int:
    with _session(args) as session:
        session.replica.resolve_conflict(args.conflict, args.keep)
        return _after_edit(args, session, f"Conflict {args.conflict}: keeping {args.keep}.")


# --------------------------------------------------------------------------- helpers


def _find_ticket(replica: Replica, ref: str) -> ReplicaRow:
    """A ticket by id or by number (``INC-000042``)."""
    row = replica.row("tickets", ref)
    if row is not None:
        return row
    wanted = ref.strip().upper()
    for found in replica.tickets(search=ref, limit=20):
        if str(found.data.get("number") or "").upper() == wanted:
            return found
    raise CliError(f"ticket {ref} is not in the replica (run `resolve-sync sync`?)")


def _lookup(replica: Replica, table: str, ref: str, keys: Sequence[str], what: str) -> ReplicaRow:
    row = replica.row(table, ref)
    if row is not None:
        return row
    wanted = ref.strip().lower()
    matches = [
        r
        for r in replica.rows(table)
        if any(str(r.data.get(k) or "").lower() == wanted for k in keys)
    ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CliError(f"{ref!r} names {len(matches)} of the replica's {what}s; give the id")
    raise CliError(f"{what} {ref} is not in the replica")


def _asset_ref(replica: Replica, ref: str) -> str:
    """A device by id, asset tag or serial number; an id the replica does not hold (a
    device of another site) is taken as given."""
    try:
        return _lookup(replica, "assets", ref, ("assetTag", "serialNumber"), "device").id
    except CliError:
        try:
            return str(uuid.UUID(ref.strip()))
        except ValueError:
            raise CliError(f"device {ref} is not in the replica; give its id") from None


def _size(value: Any) -> str:
    if not isinstance(value, int):
        return "?"
    size = float(value)
    for unit in ("bytes", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} MB"


def _user_ref(session: Session, ref: str) -> str | None:
    text = ref.strip()
    if text.lower() in ("", "none", "nobody"):
        return None
    if text.lower() == "me":
        return session.user_id
    if session.replica.row("users", text) is not None:
        return text
    for user in session.replica.rows("users"):
        if str(user.data.get("email") or "").lower() == text.lower():
            return user.id
    raise CliError(f"no user {ref!r} in the replica")


def _names(replica: Replica) -> dict[str, str]:
    names = {}
    for user in replica.rows("users"):
        d = user.data
        full = f"{d.get('firstName') or ''} {d.get('lastName') or ''}".strip()
        names[user.id] = full or str(d.get("email") or user.id)
    return names


def _ticket_json(row: ReplicaRow) -> dict[str, Any]:
    return {
        **dict(row.data),
        "displayNumber": row.display_number,
        "synced": row.synced,
        "pending": row.pending,
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


def _stored_token(store: CredentialStore, args: argparse.Namespace) -> str:
    email = _need_email(args)
    token = store.load(args.server, email)
    if token is None:
        hint = (
            " (no system keyring: sign-ins are not kept between runs)" if store.memory_only else ""
        )
        raise CliError(
            f"not signed in to {args.server} as {email}{hint}: run "
            f"`resolve-sync login --server {args.server} --email {email}`",
            EXIT_NOT_SIGNED_IN,
        )
    return token


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return getpass.getpass(f"Password for {args.email}: ")


def _ask(prompt: str) -> str:
    """A line from the terminal, or the next line of piped input."""
    if sys.stdin.isatty():
        return input(prompt).strip()
    return sys.stdin.readline().strip()


if __name__ == "__main__":
    raise SystemExit(main())
