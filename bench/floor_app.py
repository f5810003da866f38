"""A second reference: the cheapest FastAPI route that asks PostgreSQL something.

``GET /db`` takes a connection from a small per-process pool, runs ``SELECT 1``
(prepared) and answers. No ORM, no authentication, no tenant scoping: any endpoint
that reads the database on every request, as ours do to check the caller's session,
costs at least this much. Run it under uvicorn with RESOLVE_DATABASE_URL set.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI

POOL_SIZE = 8
connections: asyncio.Queue[psycopg.AsyncConnection] = asyncio.Queue()


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    url = os.environ["RESOLVE_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    opened = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(POOL_SIZE)]
    for conn in opened:
        conn.prepare_threshold = 0
        connections.put_nowait(conn)
    yield
    for conn in opened:
        await conn.close()


app = FastAPI(lifespan=lifespan)


@app.get("/db")
async def db() -> dict[str, int]:
    conn = await connections.get()
    try:
        row = await (await conn.execute("SELECT 1")).fetchone()
    finally:
        connections.put_nowait(conn)
    return {"value": row[0] if row else 0}
