"""``resolve-desktop`` / ``python -m desktop``: start the District Resolve desktop app."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from common import __version__
from sync.client import normalize_server_url
from sync.credentials import DATA_DIR_ENV


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="resolve-desktop", description="District Resolve desktop app for field technicians."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--server",
        metavar="URL",
        help="server address to put in the sign-in window (default: the last one used)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"per-user data directory (default: the platform's; also ${DATA_DIR_ENV})",
    )
    parser.add_argument("--debug", action="store_true", help="log debug messages")
    args, _qt_args = parser.parse_known_args(argv)
    if args.server:
        try:
            args.server = normalize_server_url(args.server)
        except ValueError as exc:
            parser.error(str(exc))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.data_dir:
        os.environ[DATA_DIR_ENV] = args.data_dir

    # Qt is imported only now, so --help and --version work without a display.
    from desktop.app import DesktopApp, create_application

    app = create_application([sys.argv[0], *argv])
    controller = DesktopApp(server_url=args.server)
    controller.start()
    try:
        return int(app.exec())
    finally:
        controller.shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
