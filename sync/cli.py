"""``resolve-sync``: check a server, sign in, see who is signed in, sign out.

Exit codes: 0 done, 1 the server refused or could not be reached (or is unhealthy),
2 bad usage, 3 not signed in (or the stored sign-in has ended).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence

from common import __version__
from common.errors import ErrorCode
from sync.client import DEFAULT_SERVER_URL, ApiClient, ApiError, normalize_server_url
from sync.credentials import MEMORY_ONLY_NOTICE, CredentialStore, LastSignIn

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_SIGNED_IN = 3

SERVER_ENV = "RESOLVE_SERVER_URL"


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resolve-sync",
        description="District Resolve sync client: check a server and manage your sign-in.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, *, email: bool) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument(
            "--server",
            default=os.environ.get(SERVER_ENV, DEFAULT_SERVER_URL),
            metavar="URL",
            help=f"server address (default: ${SERVER_ENV} or {DEFAULT_SERVER_URL})",
        )
        if email:
            sub.add_argument("--email", required=True, help="your sign-in email")
        return sub

    command("check", "Check that the server is up and its database migrated.", email=False)
    login = command("login", "Sign in and keep the session in the system keyring.", email=True)
    login.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input "
        "(and an authenticator code from the next, when asked for)",
    )
    login.add_argument("--mfa-code", metavar="CODE", help="code from your authenticator app")
    command("whoami", "Show who the stored sign-in belongs to.", email=True)
    command("logout", "End the session on the server and forget it here.", email=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.server = normalize_server_url(args.server)
    except ValueError as exc:
        print(f"resolve-sync: {exc}", file=sys.stderr)
        return EXIT_USAGE
    handler = {"check": _check, "login": _login, "whoami": _whoami, "logout": _logout}
    try:
        return handler[args.command](args)
    except CliError as exc:
        print(f"resolve-sync: {exc}", file=sys.stderr)
        return exc.exit_code
    except ApiError as exc:
        print(f"resolve-sync: {_describe(exc)}", file=sys.stderr)
        return EXIT_NOT_SIGNED_IN if exc.session_ended else EXIT_FAILED
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


def _describe(exc: ApiError) -> str:
    text = exc.message
    if exc.status is not None:
        text += f" ({exc.code}"
        text += f", request {exc.request_id})" if exc.request_id else ")"
    return text


# --------------------------------------------------------------------------- commands


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
    store = CredentialStore()
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
    LastSignIn(args.server, args.email.strip().lower()).save()
    print(f"Signed in to {args.server} as {result.user.display_name} <{result.user.email}>.")
    if result.mfa_enrollment_required:
        print(
            "Your organization requires two-factor sign-in for administrators: "
            "turn it on before using this account."
        )
    if store.memory_only:
        print(f"Note: {MEMORY_ONLY_NOTICE}", file=sys.stderr)
    return EXIT_OK


def _whoami(args: argparse.Namespace) -> int:
    store = CredentialStore()
    token = _stored_token(store, args)
    with ApiClient(args.server, on_tokens=store.listener(args.server, args.email)) as client:
        client.resume(token)
        try:
            me = client.me()
        except ApiError as exc:
            if exc.session_ended:
                store.delete(args.server, args.email)
                raise CliError(
                    f"{exc.message}: sign in again with "
                    f"`resolve-sync login --server {args.server} --email {args.email}`",
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
    store = CredentialStore()
    token = store.load(args.server, args.email)
    if token is None:
        print(f"Not signed in to {args.server} as {args.email}.")
        return EXIT_OK
    with ApiClient(args.server) as client:
        client.resume(token)
        try:
            client.logout()
        except ApiError as exc:
            store.delete(args.server, args.email)
            raise CliError(
                "Forgot the sign-in on this computer, but the server did not end the "
                f"session: {_describe(exc)}"
            ) from exc
    store.delete(args.server, args.email)
    print(f"Signed out of {args.server}.")
    return EXIT_OK


# --------------------------------------------------------------------------- helpers


def _stored_token(store: CredentialStore, args: argparse.Namespace) -> str:
    token = store.load(args.server, args.email)
    if token is None:
        hint = (
            " (no system keyring: sign-ins are not kept between runs)" if store.memory_only else ""
        )
        raise CliError(
            f"not signed in to {args.server} as {args.email}{hint}: run "
            f"`resolve-sync login --server {args.server} --email {args.email}`",
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
