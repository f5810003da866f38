from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from server.core.routing import api_router
from server.core.schemas import DataResponse
from server.platform import service
from server.platform.schemas import HealthOut

router = api_router(prefix="/api/platform", tags=["Platform"])


@router.get(
    "/health",
    summary="Return platform health checks for API, database, email, Redis, and storage readiness.",
    responses={503: {"model": DataResponse[HealthOut], "description": "Database down"}},
)
def health(request: Request) -> DataResponse[HealthOut]:
    result = service.health(request.app.state.db, request.app.state.settings)
    body: DataResponse[HealthOut] = DataResponse(data=result)
    if result.status == "down":
        return JSONResponse(body.model_dump(mode="json"), status_code=503)  # type: ignore[return-value]
    return body
