"""What one request costs in process, without a network or a load generator.

Drives the real ASGI application directly, one request at a time, and prints the
mean wall time per request for each path, next to a trivial ``async def`` route
measured the same way. Use it to see where a change moves the cost before running
wrk (``tickets_bench.py``); ``--profile`` prints a cProfile of one path. Usage:

    RESOLVE_DATABASE_URL=... .venv/bin/python bench/request_cost.py \
        --login agent@maplewood.k12.example:Resolve-demo-2026 \
        /api/tickets?perPage=50 /api/tickets/{first}  [--profile 1] [-n 300]

``{first}`` is replaced by the id of the first ticket of the list; a path written
``"POST /api/tickets {json}"`` is posted with that body.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


async def call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]],
               body: bytes = b"") -> tuple[int, bytes]:  # fmt: skip
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": raw_path, "raw_path": raw_path.encode(),
        "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"bench"), *headers], "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--login", required=True, help="email:password")
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--profile", type=int, help="profile the path at this index (1-based)")
    parser.add_argument("--profile-lines", type=int, default=45)
    parser.add_argument("--sort", default="cumulative", help="cProfile order, e.g. tottime")
    parser.add_argument(
        "--inline",
        action="store_true",
        help="run endpoints on the event loop's thread (so cProfile sees them)",
    )
    args = parser.parse_args()

    from bench.trivial_app import app as trivial
    from server.app import create_app

    if args.inline:
        import server.core.routing

        async def inline(func: Any, *a: Any, **k: Any) -> Any:
            return func(*a, **k)

        server.core.routing.run_in_threadpool = inline  # type: ignore[assignment]

    app = create_app()
    async with app.router.lifespan_context(app):
        email, password = args.login.split(":", 1)
        status, body = await call(
            app, "POST", "/api/auth/login", [(b"content-type", b"application/json")],
            json.dumps({"email": email, "password": password}).encode(),
        )  # fmt: skip
        if status != 200:
            raise SystemExit(f"login: {status} {body[:300]!r}")
        token = json.loads(body)["data"]["accessToken"]
        auth = [(b"authorization", f"Bearer {token}".encode())]
        _, page = await call(app, "GET", "/api/tickets?perPage=1", auth)
        first = json.loads(page)["data"][0]["id"] if b'"data"' in page else ""

        def request(path: str) -> tuple[str, str, bytes]:
            if path.startswith("POST "):
                path, _, payload = path[5:].partition(" ")
                return "POST", path, payload.encode()
            return "GET", path, b""

        async def timed(target: Any, path: str, headers: list[tuple[bytes, bytes]]) -> float:
            method, path, payload = request(path)
            headers = [*headers, (b"content-type", b"application/json")]
            for _ in range(20):
                await call(target, method, path, headers, payload)
            started = time.perf_counter()
            for _ in range(args.n):
                status, body = await call(target, method, path, headers, payload)
            elapsed = (time.perf_counter() - started) / args.n
            if status not in (200, 201):
                raise SystemExit(f"{path}: {status} {body[:300]!r}")
            return elapsed

        reference = await timed(trivial, "/ping", [])
        print(f"{'trivial async route':48} {reference * 1e3:7.3f} ms  1.00")
        for index, path in enumerate(args.paths, 1):
            path = path.replace("{first}", first)
            cost = await timed(app, path, auth)
            print(f"{path:48} {cost * 1e3:7.3f} ms  {reference / cost:.3f}")
            if args.profile == index:
                profile = cProfile.Profile()
                profile.enable()
                method, path, payload = request(path)
                headers = [*auth, (b"content-type", b"application/json")]
                for _ in range(args.n):
                    await call(app, method, path, headers, payload)
                profile.disable()
                pstats.Stats(profile).sort_stats(args.sort).print_stats(args.profile_lines)


if __name__ == "__main__":
    asyncio.run(main())
