from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request

from server.auth.deps import RequestContext, access
from server.core.routing import api_router
from server.core.schemas import DataResponse, ErrorResponse
from server.uploads import service
from server.uploads.schemas import PresignedUpload, UploadIntent, UploadOut

router = api_router(prefix="/api/uploads", tags=["Uploads"])

#: Paths whose body the request middleware must not cap at ``max_body_bytes``: the
#: upload route limits it itself, to the size declared at presign (at most the
#: organization's ``uploadMaxBytes``). The /api/v1 form only redirects.
OWN_BODY_LIMIT_PATHS = frozenset({service.LOCAL_UPLOAD_PATH, "/api/v1/uploads/local"})

_UNSUPPORTED: dict[int | str, dict[str, Any]] = {
    415: {"model": ErrorResponse, "description": "The content type is not allowed, or the "
          "file's bytes are not of the declared type"},
}  # fmt: skip

_BINARY = {"type": "string", "format": "binary"}

# Anyone signed in may ask to upload; what for (purpose) decides the role and scope.
Uploader = Annotated[RequestContext, access(None)]


@router.post(
    "/presign",
    status_code=201,
    responses=_UNSUPPORTED,
    summary="Create a tenant-scoped private upload intent for local development or "
    "S3-compatible production storage.",
)
def presign(ctx: Uploader, body: UploadIntent, request: Request) -> DataResponse[PresignedUpload]:
    org_id = ctx.resolve_organization(body.organization_id)
    upload = service.create_intent(
        ctx.session, caller=ctx.caller, organization_id=org_id, data=body
    )
    presigned = service.presigned_upload(
        upload, secret=ctx.settings.signing_key(), base_url=service.request_base_url(request)
    )
    return DataResponse(data=presigned)


@router.put(
    "/local",
    responses=_UNSUPPORTED,
    summary="Local development upload target for private tenant-scoped files.",
    description="Send the file's bytes as the raw body to the `uploadUrl` from "
    "`POST /api/uploads/presign`, with its `Content-Type`, before `expiresAt`. The "
    "signed `key` and `token` authenticate the request (a bearer token, if sent, must "
    "be the same user's). The body must be exactly `sizeBytes` long and really be of "
    "the declared type.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def put_local(
    request: Request,
    key: Annotated[str, Query(min_length=1, max_length=100, description="The storage key")],
    token: Annotated[str, Query(min_length=1, max_length=200, description="The signature")],
) -> DataResponse[UploadOut]:
    upload = await service.receive_local(request, key=key, token=token)
    return DataResponse(data=UploadOut.model_validate(upload))
