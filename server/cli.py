"""``resolve-server``: run, migrate and administer the server from a shell."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from server.core.config import SECRET_KEY_FILE, Settings, get_settings
from server.core.files import private_dir

if TYPE_CHECKING:
    from server.core.engine import Database
    from server.core.tenancy import Caller

M = TypeVar("M", bound=BaseModel)


def _settings_or_exit() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"RESOLVE_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        print(f"resolve-server: bad configuration: {problems}", file=sys.stderr)
        raise SystemExit(2) from None


def _database(settings: Settings) -> Database:
    from server.core.engine import Database

    if settings.is_sqlite:
        private_dir(settings.data_dir)
    return Database(settings.database_url)


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from server.migrations import upgrade

    if settings.is_sqlite:
        private_dir(settings.data_dir)
    upgrade(settings.database_url)
    print(f"database is at the latest schema ({_redacted(settings.database_url)})")
    return 0


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import os

    import uvicorn

    workers = args.workers
    if workers > 1 and settings.is_sqlite:
        print("resolve-server: SQLite serves one worker; use PostgreSQL for more", file=sys.stderr)
        return 2
    # Every worker reads the same settings; they share the rate-limit budget.
    os.environ["RESOLVE_WORKERS"] = str(workers)
    settings.signing_key()
    host, port = args.host, args.port
    print(f"District Resolve API on http://{host}:{port}  (docs: http://{host}:{port}/api/docs)")
    uvicorn.run(
        "server.app:factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
    )
    return 0


def cmd_create_org(settings: Settings, args: argparse.Namespace) -> int:
    from server.core.tenancy import ALL_TENANTS
    from server.organizations import service
    from server.organizations.schemas import OrganizationCreate

    data = _validated(OrganizationCreate, name=args.name, slug=args.slug, domains=args.domain or [])
    db = _database(settings)
    with db.transaction(tenant=ALL_TENANTS) as session:
        org = service.create_organization(
            session, settings=settings, caller=_cli_caller(), data=data
        )
        print(f"created organization {org.name} ({org.slug}) id={org.id}")
    return 0


def _cli_caller() -> Caller:
    import uuid

    from common.enums import Role
    from server.core.tenancy import Caller

    return Caller(
        user_id=uuid.UUID(int=0), organization_id=None, role=Role.SUPER_ADMIN, email="cli@localhost"
    )


def _validated(model: type[M], **values: Any) -> M:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"resolve-server: {problems}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_create_user(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from common.enums import Role
    from server.auth.service import set_password
    from server.core.errors import ApiError
    from server.core.tenancy import ALL_TENANTS
    from server.organizations.models import Organization
    from server.seed import ensure_super_admin
    from server.users import service
    from server.users.schemas import UserCreate

    db = _database(settings)
    try:
        with db.transaction(tenant=ALL_TENANTS) as session:
            if args.role == Role.SUPER_ADMIN.value:
                if args.org:
                    print(
                        "resolve-server: a super_admin belongs to no organization", file=sys.stderr
                    )
                    return 2
                from server.auth.service import check_password_strength

                check_password_strength(args.password, email=args.email)
                user = ensure_super_admin(session, args.email.lower(), args.password)
                set_password(user, args.password)
                print(f"super admin {user.email} ready")
                return 0
            if not args.org:
                print("resolve-server: --org is required for this role", file=sys.stderr)
                return 2
            org = session.scalar(select(Organization).where(Organization.slug == args.org))
            if org is None:
                print(f"resolve-server: no organization with slug {args.org!r}", file=sys.stderr)
                return 2
            data = _validated(
                UserCreate,
                email=args.email,
                password=args.password,
                role=args.role,
                first_name=args.first_name or "",
                last_name=args.last_name or "",
            )
            user = service.create_user(
                session, settings=settings, caller=_cli_caller(), organization_id=org.id, data=data
            )
            print(f"created {user.role.value} {user.email} in {org.slug}")
    except ApiError as exc:
        print(f"resolve-server: {exc.message}", file=sys.stderr)
        return 2
    return 0


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def cmd_seed_demo(settings: Settings, args: argparse.Namespace) -> int:
    from server.core.tenancy import ALL_TENANTS
    from server.seed import (
        DEMO_PASSWORD,
        ensure_super_admin,
        generate_load,
        populate_demo,
        seed_demo,
    )

    db = _database(settings)
    with db.transaction(tenant=ALL_TENANTS) as session:
        org, logins, created = seed_demo(session)
        ensure_super_admin(session, "platform@district-resolve.example", DEMO_PASSWORD)
        org_id, org_name, org_slug = org.id, org.name, org.slug
    if created:
        made = populate_demo(db, org_id, demo_tickets=args.demo_tickets)
        print("demo data: " + ", ".join(f"{n} {what}" for what, n in made.items()))
    if args.tickets or args.assets:
        started = time.monotonic()
        generate_load(db, org_id, tickets=args.tickets, assets=args.assets)
        print(
            f"load data: {args.tickets} tickets, {args.assets} assets "
            f"in {time.monotonic() - started:.0f} s"
        )
    print(f"demo district: {org_name} (slug {org_slug})")
    print("demo logins:")
    print(f"  {'super_admin':12} platform@district-resolve.example  {DEMO_PASSWORD}")
    for login in logins:
        print(f"  {login.role:12} {login.email:34} {login.password}")
    return 0


def cmd_export_openapi(settings: Settings, args: argparse.Namespace) -> int:
    from server.app import create_app

    settings.background_jobs = False
    schema = create_app(settings).openapi()
    text = json.dumps(schema, indent=2, sort_keys=False)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def cmd_outbox(settings: Settings, args: argparse.Namespace) -> int:
    from server.auth.service import mail_requested_resets
    from server.core.tenancy import ALL_TENANTS
    from server.mail import service

    db = _database(settings)
    with db.transaction(tenant=ALL_TENANTS) as session:
        # as the outbox job does first: queued reset requests become mails
        mail_requested_resets(session, settings=settings)
        if args.send:
            if not settings.smtp_configured:
                print("resolve-server: set RESOLVE_SMTP_HOST to send mail", file=sys.stderr)
                return 2
            sent, failed = service.deliver_due(session, settings)
            print(f"sent {sent}, failed {failed}")
            return 0 if not failed else 1
        emails = service.pending(session, limit=args.limit)
        if not emails:
            print("the outbox is empty")
        for email in emails:
            print(f"--- {email.created_at:%Y-%m-%d %H:%M} {email.kind} to {email.to_address}")
            print(f"Subject: {email.subject}")
            if args.body:
                print(email.body_text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resolve-server", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--proxy-headers", action="store_true", help="trust X-Forwarded-For")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="bring the database to the latest schema").set_defaults(
        func=cmd_migrate
    )

    org = sub.add_parser("create-org", help="create an organization")
    org.add_argument("--name", required=True)
    org.add_argument("--slug", required=True)
    org.add_argument("--domain", action="append", help="email domain (repeatable)")
    org.set_defaults(func=cmd_create_org)

    user = sub.add_parser("create-user", help="create a user")
    user.add_argument("--org", help="organization slug (not for super_admin)")
    user.add_argument("--email", required=True)
    user.add_argument("--password", required=True)
    user.add_argument(
        "--role",
        required=True,
        choices=["super_admin", "org_admin", "agent", "technician", "requester"],
    )
    user.add_argument("--first-name")
    user.add_argument("--last-name")
    user.set_defaults(func=cmd_create_user)

    seed = sub.add_parser("seed-demo", help="create the demo district (idempotent)")
    seed.add_argument(
        "--demo-tickets",
        type=_count,
        default=300,
        help="realistic tickets made through the services (first run only)",
    )
    seed.add_argument(
        "--tickets", type=_count, default=0, help="bulk-add this many more tickets for load tests"
    )
    seed.add_argument(
        "--assets", type=_count, default=0, help="bulk-add this many more assets for load tests"
    )
    seed.set_defaults(func=cmd_seed_demo)

    export = sub.add_parser("export-openapi", help="print or write the OpenAPI document")
    export.add_argument("--output", "-o")
    export.set_defaults(func=cmd_export_openapi)

    outbox = sub.add_parser("outbox", help="list (or send) queued email")
    outbox.add_argument("--send", action="store_true", help="send what is due now via SMTP")
    outbox.add_argument("--body", action="store_true", help="print message bodies")
    outbox.add_argument("--limit", type=int, default=100)
    outbox.set_defaults(func=cmd_outbox)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = _settings_or_exit()
    from server.core.security import configure_password_hashing

    configure_password_hashing(settings.password_cost)  # create-user, reset-password, seed-demo
    if args.func in (cmd_serve, cmd_migrate):
        _warn_if_others_can_read(settings)
    return int(args.func(settings, args))


def _warn_if_others_can_read(settings: Settings) -> None:
    """The data directory, key, SQLite files and uploads should be the owner's alone."""
    from server.core.engine import sqlite_path
    from server.core.files import readable_by_others, sqlite_files
    from server.uploads.storage import UPLOADS_DIR

    database = sqlite_path(settings.database_url)
    paths = [settings.data_dir, settings.data_dir / SECRET_KEY_FILE]
    paths += [settings.data_dir / UPLOADS_DIR] + (sqlite_files(database) if database else [])
    for exposed in readable_by_others(paths):
        print(
            f"resolve-server: warning: other users of this machine can read {exposed}; "
            "chmod it to 0600 (files) or 0700 (folders)",
            file=sys.stderr,
        )


if __name__ == "__main__":
    raise SystemExit(main())
