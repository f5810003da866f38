"""The reference every figure is compared with: the cheapest possible FastAPI route."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}
