"""Private uploads: presign, send the bytes to the signed URL, claim, read back, clean up.

Against the live server over HTTP where a user would notice, and through the service
for what no route exposes yet (claim, cleanup, reading back).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from common.enums import Role
from server.audit.models import AuditEvent
from server.core.config import Settings
from server.core.db import JobLease, utcnow
from server.core.engine import Database
from server.core.errors import ApiError
from server.core.tenancy import ALL_TENANTS, Caller
from server.uploads import service, storage
from server.uploads.models import Upload, UploadPurpose, UploadStatus
from server.uploads.schemas import UploadIntent
from tests.conftest import Account, Tenant, World, assert_error

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200 + b"This program"


def _presign(
    client: httpx.Client,
    headers: dict[str, str],
    *,
    name: str = "projector.png",
    mime: str = "image/png",
    size: int = len(PNG),
    purpose: str = "TICKET_ATTACHMENT",
    **extra: Any,
) -> httpx.Response:
    body = {"fileName": name, "mimeType": mime, "sizeBytes": size, "purpose": purpose, **extra}
    return client.post("/api/uploads/presign", json=body, headers=headers)


def _intent(client: httpx.Client, headers: dict[str, str], **kw: Any) -> dict[str, Any]:
    response = _presign(client, headers, **kw)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def _put(
    client: httpx.Client,
    intent: dict[str, Any],
    content: bytes | Iterator[bytes],
    *,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
    url: str | None = None,
) -> httpx.Response:
    sent = {"Content-Type": content_type or intent["headers"]["Content-Type"], **(headers or {})}
    return client.put(url or intent["uploadUrl"], content=content, headers=sent)


def _row(db: Database, upload_id: str) -> Upload:
    with db.transaction(tenant=ALL_TENANTS) as session:
        row = session.get(Upload, uuid.UUID(upload_id))
        assert row is not None
        return row


def _files(settings: Settings, org_id: uuid.UUID) -> list[Path]:
    directory = settings.data_dir / "uploads" / str(org_id)
    return sorted(directory.iterdir()) if directory.is_dir() else []


def _caller(account: Account) -> Caller:
    return Caller(
        user_id=account.id,
        organization_id=account.organization_id,
        role=account.role,
        email=account.email,
        scopes=frozenset({"*"}),
    )


@pytest.fixture
def tenant(world: World) -> Tenant:
    return world.org("lincoln")


@pytest.fixture
def tech(world: World, tenant: Tenant) -> Account:
    return world.user(tenant.id, Role.TECHNICIAN, email="tech@lincoln.example")


# ------------------------------------------------------------------- the happy path


def test_a_photo_goes_up_through_the_signed_url_and_lands_privately(
    client: httpx.Client, db: Database, settings: Settings, tenant: Tenant, tech: Account
) -> None:
    photo = PNG + os.urandom(2 * 1024 * 1024)  # larger than the 1 MiB cap on JSON bodies
    before = utcnow()
    intent = _intent(client, tech.headers, name="Room 204 projector.png", size=len(photo))
    assert intent["method"] == "PUT"
    assert intent["headers"] == {"Content-Type": "image/png"}
    assert intent["maxBytes"] == len(photo)
    assert intent["fileName"] == "Room 204 projector.png"
    org, _, file_id = intent["storageKey"].partition("/")
    assert org == str(tenant.id)
    assert uuid.UUID(file_id).version == 7
    assert "projector" not in intent["storageKey"]
    url = urlsplit(intent["uploadUrl"])
    assert f"{url.scheme}://{url.netloc}" == str(client.base_url)
    assert url.path == "/api/uploads/local"
    query = parse_qs(url.query)
    assert query["key"] == [intent["storageKey"]]
    assert query["token"][0].startswith("v1.")
    expires = _row(db, intent["uploadId"]).expires_at
    assert timedelta(minutes=14) < expires - before <= timedelta(minutes=15, seconds=5)

    # the URL alone authenticates the upload (no bearer token)
    response = _put(client, intent, photo)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["status"] == "complete"
    assert data["sha256"] == hashlib.sha256(photo).hexdigest()
    assert data["sizeBytes"] == len(photo)
    assert data["uploadedById"] == str(tech.id)

    row = _row(db, intent["uploadId"])
    assert (row.status, row.sha256, row.completed_at is not None) == (
        "complete",
        hashlib.sha256(photo).hexdigest(),
        True,
    )
    [path] = _files(settings, tenant.id)
    assert path.name == file_id
    assert path.read_bytes() == photo
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    # never reachable over HTTP except through the application's own checks
    assert client.get(f"/uploads/{intent['storageKey']}").status_code == 404
    assert client.get(f"/api/uploads/{intent['storageKey']}").status_code in (404, 405)

    # the same URL cannot replace the file
    again = _put(client, intent, PNG + os.urandom(len(photo) - len(PNG)))
    assert_error(again, 409, "RESOURCE_CONFLICT")
    assert path.read_bytes() == photo


def test_a_bearer_token_with_the_upload_must_be_the_uploaders(
    world: World, client: httpx.Client, db: Database, tenant: Tenant, tech: Account
) -> None:
    colleague = world.user(tenant.id, Role.TECHNICIAN)
    intent = _intent(client, tech.headers)
    refused = _put(client, intent, PNG, headers=colleague.headers)
    assert_error(refused, 403, "PERMISSION_DENIED")
    assert _row(db, intent["uploadId"]).status == "pending"
    assert_error(
        _put(client, intent, PNG, headers={"Authorization": "Bearer not-a-token"}),
        401,
        "TOKEN_INVALID",
    )
    ok = _put(client, intent, PNG, headers=tech.headers)
    assert ok.status_code == 200, ok.text


def test_screenshots_csv_and_office_files_check_out(
    client: httpx.Client, tenant: Tenant, tech: Account
) -> None:
    admin = tenant.admin.headers
    csv = "tag,serial,room\nLT-001,5CG1234,204\nLT-002,5CG9876,Café\n".encode()
    intent = _intent(
        client, admin, name="laptops.csv", mime="text/csv", size=len(csv), purpose="IMPORT_FILE"
    )
    assert _put(client, intent, csv).status_code == 200

    docx = _office_file("word/document.xml")
    intent = _intent(client, tech.headers, name="quote.docx", mime=_DOCX, size=len(docx))
    assert _put(client, intent, docx).status_code == 200

    shot = b"RIFF\x00\x10\x00\x00WEBPVP8 " + os.urandom(300)
    intent = _intent(
        client,
        tech.headers,
        name="tab.webp",
        mime="image/webp",
        size=len(shot),
        purpose="CHROME_SCREENSHOT",
    )
    assert _put(client, intent, shot).status_code == 200

    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
    intent = _intent(
        client, tech.headers, name="invoice.pdf", mime="application/pdf", size=len(pdf)
    )
    assert _put(client, intent, pdf).status_code == 200


_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _office_file(part: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(part, "<doc/>")
    return buffer.getvalue()


# ------------------------------------------------------------------------ file names


@pytest.mark.parametrize(
    ("sent", "mime", "stored"),
    [
        ("../../etc/passwd", "text/plain", "passwd.txt"),
        ("C:\\x\\y.png", "image/png", "y.png"),
        ("..\\..\\boot.ini", "text/plain", "boot.ini"),
        ("/var/www/../../x.pdf", "application/pdf", "x.pdf"),
        ("report\r\nSet-Cookie: a=b.pdf", "application/pdf", "report Set-Cookie_ a=b.pdf"),
        ("tab\there.txt", "text/plain", "tab here.txt"),
        ("..", "text/plain", "upload.txt"),
        (".bashrc", "text/plain", "bashrc.txt"),
        ("name. . .", "image/png", "name.png"),
        ("CON.txt", "text/plain", "_CON.txt"),
        ("lpt1", "text/plain", "_lpt1.txt"),
        ("evil.exe", "image/png", "evil.exe.png"),
        ("notes.html", "text/plain", "notes.html.txt"),
        ("photo\u202egnp.exe", "image/png", "photognp.exe.png"),
        ("zero\u200bwidth.JPG", "image/jpeg", "zerowidth.JPG"),
        ('a<b>c:d"e|f?g*h.csv', "text/csv", "a_b_c_d_e_f_g_h.csv"),
        ("Café menu.pdf", "application/pdf", "Café menu.pdf"),
    ],
)
def test_file_names_are_made_safe(sent: str, mime: str, stored: str) -> None:
    assert service.sanitize_file_name(sent, mime) == stored


def test_long_names_keep_their_extension() -> None:
    name = service.sanitize_file_name("x" * 900 + ".jpeg", "image/jpeg")
    assert len(name) == service.MAX_NAME_CHARS
    assert name.endswith("x.jpeg")


def test_path_tricks_never_reach_the_disk(
    client: httpx.Client, settings: Settings, tenant: Tenant, tech: Account
) -> None:
    body = b"just a note\n"
    intent = _intent(
        client, tech.headers, name="../../../../etc/passwd", mime="text/plain", size=len(body)
    )
    assert intent["fileName"] == "passwd.txt"
    assert _put(client, intent, body).status_code == 200
    [path] = _files(settings, tenant.id)
    assert path.name == intent["storageKey"].split("/")[1]
    assert path.parent == settings.data_dir / "uploads" / str(tenant.id)

    nul = _presign(client, tech.headers, name="a\x00.png")
    error = assert_error(nul, 422, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "fileName"
    newline = _intent(client, tech.headers, name="line\nbreak.png")
    assert newline["fileName"] == "line break.png"


# ----------------------------------------------------------------- policy at presign


def test_presign_refuses_what_the_policy_does_not_allow(
    world: World, client: httpx.Client, db: Database, tenant: Tenant, tech: Account
) -> None:
    def count() -> int:
        with db.transaction(tenant=ALL_TENANTS) as session:
            return int(session.scalar(select(func.count()).select_from(Upload)) or 0)

    error = assert_error(
        _presign(client, tech.headers, name="setup.exe", mime="application/x-msdownload"),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    assert error["details"]["field"] == "mimeType"
    assert "image/png" in error["details"]["allowed"]
    assert_error(_presign(client, tech.headers, mime="application/zip"), 415)
    error = assert_error(
        _presign(client, tech.headers, size=25 * 1024 * 1024 + 1), 413, "PAYLOAD_TOO_LARGE"
    )
    assert error["details"] == {"field": "sizeBytes", "maxBytes": 25 * 1024 * 1024}
    # screenshots are images; imports are tables and need an administrator
    assert_error(
        _presign(client, tech.headers, mime="application/pdf", purpose="CHROME_SCREENSHOT"), 415
    )
    assert_error(
        _presign(client, tech.headers, mime="text/csv", purpose="IMPORT_FILE"),
        403,
        "PERMISSION_DENIED",
    )
    requester = world.user(tenant.id, Role.REQUESTER)
    assert_error(_presign(client, requester.headers, purpose="ASSET_ATTACHMENT"), 403)
    assert _presign(client, requester.headers).status_code == 201  # their own ticket photo
    assert_error(_presign(client, tech.headers, size=0), 422, "VALIDATION_ERROR")
    assert_error(
        _presign(client, tech.headers, ticketId=str(uuid.uuid4())), 422, "VALIDATION_ERROR"
    )
    assert count() == 1

    # the organization's admin changes the policy
    patched = client.patch(
        "/api/security/settings",
        json={
            "uploadMaxBytes": 1024 * 1024,
            "uploadAllowedMimeTypes": ["image/png", "application/zip"],
        },
        headers=tenant.admin.headers,
    )
    assert patched.status_code == 200, patched.text
    policy = patched.json()["data"]["policy"]
    assert policy["uploadMaxBytes"] == 1024 * 1024
    assert policy["uploadAllowedMimeTypes"] == ["image/png", "application/zip"]
    assert_error(_presign(client, tech.headers, size=1024 * 1024 + 1), 413)
    assert_error(_presign(client, tech.headers, mime="application/pdf"), 415)
    assert (
        _presign(client, tech.headers, mime="application/zip", name="logs.zip").status_code == 201
    )
    for bad in (
        {"uploadMaxBytes": 100 * 1024 * 1024 + 1},
        {"uploadMaxBytes": 10},
        {"uploadAllowedMimeTypes": ["application/x-msdownload"]},
        {"uploadAllowedMimeTypes": ["image/svg+xml"]},
    ):
        assert_error(
            client.patch("/api/security/settings", json=bad, headers=tenant.admin.headers), 422
        )


def test_a_new_organization_gets_the_default_upload_policy(
    client: httpx.Client, tenant: Tenant
) -> None:
    policy = client.get("/api/security/settings", headers=tenant.admin.headers).json()["data"][
        "policy"
    ]
    assert policy["uploadMaxBytes"] == 25 * 1024 * 1024
    assert "image/jpeg" in policy["uploadAllowedMimeTypes"]
    assert "text/csv" in policy["uploadAllowedMimeTypes"]
    assert "application/zip" not in policy["uploadAllowedMimeTypes"]


# ------------------------------------------------------------------ bytes are checked


def test_an_executable_claiming_to_be_a_png_is_refused_and_removed(
    client: httpx.Client, db: Database, settings: Settings, tenant: Tenant, tech: Account
) -> None:
    intent = _intent(client, tech.headers, name="cat.png", size=len(EXE))
    error = assert_error(_put(client, intent, EXE), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert error["details"]["detected"] == "application/x-msdownload"
    assert _files(settings, tenant.id) == []
    row = _row(db, intent["uploadId"])
    assert (row.status, row.sha256) == ("rejected", None)
    with db.transaction(tenant=tenant.id) as session:
        actions = session.scalars(select(AuditEvent.action)).all()
    assert "upload.rejected" in actions
    # a refused upload cannot be retried with other bytes: ask for a new link
    assert_error(_put(client, intent, PNG[: len(EXE)].ljust(len(EXE), b"\0")), 409)


@pytest.mark.parametrize(
    ("mime", "content"),
    [
        ("text/plain", b"caf\xe9 latin-1 is not UTF-8\n"),
        ("text/csv", b"a,b\n1,\x002\n"),
        ("text/plain", PNG),
        ("image/jpeg", PNG),
        ("application/pdf", b"plain words, no PDF header at all\n"),
        (_DOCX, _office_file("xl/workbook.xml")),
        (_DOCX, b"PK\x03\x04" + b"\x00" * 60),
        ("image/gif", b"GIF87"),
    ],
)
def test_bytes_that_are_not_the_declared_type_are_refused(
    client: httpx.Client,
    settings: Settings,
    tenant: Tenant,
    tech: Account,
    mime: str,
    content: bytes,
) -> None:
    intent = _intent(client, tech.headers, name="file", mime=mime, size=len(content))
    assert_error(_put(client, intent, content), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert _files(settings, tenant.id) == []


def test_the_content_type_header_must_be_the_declared_one(
    client: httpx.Client, db: Database, tenant: Tenant, tech: Account
) -> None:
    intent = _intent(client, tech.headers)
    assert_error(_put(client, intent, PNG, content_type="text/plain"), 415)
    assert _row(db, intent["uploadId"]).status == "pending"
    assert _put(client, intent, PNG, content_type="image/PNG").status_code == 200


# ----------------------------------------------------------------------- exact size


def _chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_the_body_must_be_exactly_the_declared_size(
    client: httpx.Client, db: Database, settings: Settings, tenant: Tenant, tech: Account
) -> None:
    intent = _intent(client, tech.headers)
    short, long = PNG[:-1], PNG + b"!"
    error = assert_error(_put(client, intent, short), 422, "VALIDATION_ERROR")
    assert error["details"] == {
        "field": "sizeBytes",
        "expected": len(PNG),
        "received": len(PNG) - 1,
    }
    assert_error(_put(client, intent, long), 413, "PAYLOAD_TOO_LARGE")
    # without Content-Length (chunked), counted as it arrives
    assert_error(_put(client, intent, _chunks(short)), 422, "VALIDATION_ERROR")
    assert_error(_put(client, intent, _chunks(long)), 413, "PAYLOAD_TOO_LARGE")
    assert _row(db, intent["uploadId"]).status == "pending"
    assert _files(settings, tenant.id) == []  # no temporary files left behind
    done = _put(client, intent, _chunks(PNG))
    assert done.status_code == 200, done.text
    assert done.json()["data"]["sha256"] == hashlib.sha256(PNG).hexdigest()


def test_two_uploads_to_one_link_at_once_keep_one_file(
    client: httpx.Client, settings: Settings, tenant: Tenant, tech: Account
) -> None:
    photo = PNG + os.urandom(512 * 1024)
    intent = _intent(client, tech.headers, size=len(photo))

    def send(_: int) -> int:
        with httpx.Client(timeout=30) as own:
            return _put(own, intent, _chunks(photo, 64 * 1024)).status_code

    with ThreadPoolExecutor(max_workers=3) as pool:
        statuses = sorted(pool.map(send, range(3)))
    assert statuses == [200, 409, 409]
    [path] = _files(settings, tenant.id)
    assert path.read_bytes() == photo


# ------------------------------------------------------------------------ the link


def test_altered_or_expired_links_are_refused(
    client: httpx.Client, db: Database, settings: Settings, tenant: Tenant, tech: Account
) -> None:
    intent = _intent(client, tech.headers)
    key = intent["storageKey"]
    token = parse_qs(urlsplit(intent["uploadUrl"]).query)["token"][0]
    version, expires, signature = token.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    url = "/api/uploads/local"
    for params in (
        {"key": key, "token": f"{version}.{expires}.{flipped}"},
        {"key": key, "token": f"{version}.{int(expires) + 3600}.{signature}"},
        {"key": key, "token": f"v2.{expires}.{signature}"},
        {"key": key, "token": "garbage"},
        {"key": f"{tenant.id}/{uuid.uuid4()}", "token": token},
        {"key": "../../etc/passwd", "token": token},
    ):
        response = client.put(
            url, params=params, content=PNG, headers={"Content-Type": "image/png"}
        )
        assert_error(response, 401, "TOKEN_INVALID")
    assert_error(client.put(url, params={"key": key}, content=PNG), 422, "VALIDATION_ERROR")
    assert_error(client.put(url, content=PNG), 422, "VALIDATION_ERROR")

    # a link made 20 minutes ago has expired
    with db.transaction(tenant=tenant.id) as session:
        old = service.create_intent(
            session,
            caller=_caller(tech),
            organization_id=tenant.id,
            data=UploadIntent(
                fileName="old.png",
                mimeType="image/png",
                sizeBytes=len(PNG),
                purpose="TICKET_ATTACHMENT",
            ),
            now=utcnow() - timedelta(minutes=20),
        )
        presigned = service.presigned_upload(old, secret=settings.signing_key(), base_url="")
    response = client.put(presigned.upload_url, content=PNG, headers={"Content-Type": "image/png"})
    assert_error(response, 401, "TOKEN_EXPIRED")
    assert _files(settings, tenant.id) == []


def test_another_organizations_upload_cannot_be_written(
    world: World,
    client: httpx.Client,
    db: Database,
    settings: Settings,
    tenant: Tenant,
    tech: Account,
) -> None:
    other = world.org("riverside")
    theirs = _intent(client, other.admin.headers)
    mine = _intent(client, tech.headers)
    my_token = parse_qs(urlsplit(mine["uploadUrl"]).query)["token"][0]
    # my valid signature on their key
    response = client.put(
        "/api/uploads/local",
        params={"key": theirs["storageKey"], "token": my_token},
        content=PNG,
        headers={"Content-Type": "image/png"},
    )
    assert_error(response, 401, "TOKEN_INVALID")
    # their genuine link with my bearer token
    assert_error(_put(client, theirs, PNG, headers=tech.headers), 403, "PERMISSION_DENIED")
    # presigning for another organization
    assert_error(
        _presign(client, tech.headers, organizationId=str(other.id)), 403, "PERMISSION_DENIED"
    )
    assert _row(db, theirs["uploadId"]).status == "pending"
    assert _files(settings, other.id) == []


def test_a_deactivated_uploader_can_no_longer_use_the_link(
    client: httpx.Client, db: Database, tenant: Tenant, tech: Account
) -> None:
    intent = _intent(client, tech.headers)
    response = client.post(f"/api/users/{tech.id}/deactivate", headers=tenant.admin.headers)
    assert response.status_code == 200, response.text
    assert_error(_put(client, intent, PNG), 403, "ACCOUNT_DISABLED")
    assert _row(db, intent["uploadId"]).status == "pending"


def test_a_platform_administrator_uploads_for_an_organization(
    world: World, client: httpx.Client, tenant: Tenant
) -> None:
    root = world.super_admin()
    assert_error(_presign(client, root.headers), 422, "VALIDATION_ERROR")
    intent = _intent(
        client,
        root.headers,
        organizationId=str(tenant.id),
        purpose="IMPORT_FILE",
        mime="text/csv",
        name="users.csv",
        size=4,
    )
    assert intent["storageKey"].startswith(f"{tenant.id}/")
    assert _put(client, intent, b"a,b\n").status_code == 200


# --------------------------------------------------------------------------- claim


def _complete_upload(client: httpx.Client, account: Account, **kw: Any) -> dict[str, Any]:
    intent = _intent(client, account.headers, **kw)
    response = _put(client, intent, PNG)
    assert response.status_code == 200, response.text
    return intent


def test_a_finished_upload_is_claimed_once_by_its_uploader_or_staff(
    world: World, client: httpx.Client, db: Database, tenant: Tenant, tech: Account
) -> None:
    requester = world.user(tenant.id, Role.REQUESTER)
    neighbour = world.user(tenant.id, Role.REQUESTER)
    agent = world.user(tenant.id, Role.AGENT, login=False)
    mine = _complete_upload(client, requester)
    pending = _intent(client, requester.headers)
    other = world.org("riverside")
    foreign = _complete_upload(client, other.admin)

    def claim(account: Account, ref: str, purpose: Any = "TICKET_ATTACHMENT", **kw: Any) -> Any:
        with db.transaction(tenant=tenant.id) as session:
            return service.claim(session, _caller(account), ref, purpose, **kw)

    def refused(status: int, code: str, *args: Any, **kw: Any) -> dict[str, Any]:
        with pytest.raises(ApiError) as caught:
            claim(*args, **kw)
        assert (caught.value.status_code, caught.value.code) == (status, code)
        return caught.value.details

    assert refused(404, "RESOURCE_NOT_FOUND", neighbour, mine["storageKey"]) == {
        "field": "storageKey"
    }
    assert refused(404, "RESOURCE_NOT_FOUND", agent, foreign["storageKey"])
    assert refused(404, "RESOURCE_NOT_FOUND", agent, foreign["uploadId"]) == {"field": "uploadId"}
    assert refused(404, "RESOURCE_NOT_FOUND", agent, "not a key")
    refused(422, "VALIDATION_ERROR", requester, mine["storageKey"], UploadPurpose.IMPORT_FILE)
    refused(422, "BUSINESS_RULE_VIOLATION", requester, pending["storageKey"])

    claimed = claim(requester, mine["storageKey"], [UploadPurpose.TICKET_ATTACHMENT])
    assert claimed.claimed_by_id == requester.id
    assert claimed.claimed_at is not None
    assert claimed.status == UploadStatus.COMPLETE
    refused(409, "RESOURCE_CONFLICT", requester, mine["storageKey"])
    refused(409, "RESOURCE_CONFLICT", agent, mine["uploadId"])

    # staff may attach a file someone else uploaded (by id, too)
    another = _complete_upload(client, requester)
    assert claim(agent, another["uploadId"]).claimed_by_id == agent.id


def test_an_upload_made_for_a_ticket_is_claimed_for_that_ticket(
    world: World, client: httpx.Client, db: Database, tenant: Tenant, tech: Account
) -> None:
    created = client.post("/api/tickets", json={"title": "Projector"}, headers=tech.headers)
    assert created.status_code == 201, created.text
    ticket_id = uuid.UUID(created.json()["data"]["id"])
    upload = _complete_upload(client, tech, ticketId=str(ticket_id))
    with pytest.raises(ApiError) as caught, db.transaction(tenant=tenant.id) as session:
        service.claim(
            session,
            _caller(tech),
            upload["storageKey"],
            "TICKET_ATTACHMENT",
            ticket_id=uuid.uuid4(),
        )
    assert caught.value.status_code == 422
    with db.transaction(tenant=tenant.id) as session:
        claimed = service.claim(
            session, _caller(tech), upload["storageKey"], "TICKET_ATTACHMENT", ticket_id=ticket_id
        )
        assert claimed.ticket_id == ticket_id
    assert_error(
        _presign(client, tech.headers, ticketId=str(ticket_id), purpose="ASSET_ATTACHMENT"), 422
    )
    # a requester cannot aim a file at a ticket they may not see (nor learn it exists)
    stranger = world.user(tenant.id, Role.REQUESTER)
    error = assert_error(_presign(client, stranger.headers, ticketId=str(ticket_id)), 422)
    assert error["details"] == {"field": "ticketId"}


def test_an_asset_attachment_names_an_asset_of_the_callers_own_organization(
    world: World, client: httpx.Client, db: Database, tenant: Tenant, tech: Account
) -> None:
    """Another district's asset id is as unknown as a made-up one, and nothing is stored."""

    def asset_of(org: Tenant, tag: str) -> str:
        types = client.get("/api/asset-types", headers=org.admin.headers).json()["data"]
        body = {"assetTag": tag, "assetTypeId": types[0]["id"]}
        created = client.post("/api/assets", json=body, headers=org.admin.headers)
        assert created.status_code == 201, created.text
        return str(created.json()["data"]["id"])

    mine = asset_of(tenant, "LIN-0001")
    theirs = asset_of(world.org("oakdale"), "OAK-0001")
    with db.transaction(tenant=ALL_TENANTS) as session:
        uploads_before = session.scalar(select(func.count()).select_from(Upload))
    for asset_id in (theirs, str(uuid.uuid4())):
        refused = _presign(client, tech.headers, purpose="ASSET_ATTACHMENT", assetId=asset_id)
        assert assert_error(refused, 422, "VALIDATION_ERROR")["details"] == {"field": "assetId"}
    with db.transaction(tenant=ALL_TENANTS) as session:
        assert session.scalar(select(func.count()).select_from(Upload)) == uploads_before
    accepted = _presign(client, tech.headers, purpose="ASSET_ATTACHMENT", assetId=mine)
    assert accepted.status_code == 201, accepted.text


# ------------------------------------------------------------------ reading it back


def test_a_complete_upload_reads_back_as_a_safe_download(
    client: httpx.Client, db: Database, settings: Settings, tenant: Tenant, tech: Account
) -> None:
    intent = _complete_upload(client, tech, name='Café "menu".png')
    pending = _intent(client, tech.headers)
    with db.transaction(tenant=tenant.id) as session:
        upload = session.get_one(Upload, uuid.UUID(intent["uploadId"]))
        assert b"".join(service.open_stream(upload, data_dir=settings.data_dir)) == PNG
        path = service.path_of(session, upload.id, data_dir=settings.data_dir)
        assert path.read_bytes() == PNG
        headers = service.download_headers(upload)
        with pytest.raises(ApiError) as caught:
            service.path_of(session, uuid.UUID(pending["uploadId"]), data_dir=settings.data_dir)
        assert caught.value.status_code == 404
    another_organization = uuid.uuid4()
    with db.transaction(tenant=another_organization) as session, pytest.raises(ApiError):
        service.path_of(session, upload.id, data_dir=settings.data_dir)
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"Caf_ _menu_.png\"; filename*=UTF-8''Caf%C3%A9%20_menu_.png"
    )
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in headers["Content-Security-Policy"]
    assert headers["ETag"] == f'"{hashlib.sha256(PNG).hexdigest()}"'


# ------------------------------------------------------------------------ clean up


def test_cleanup_removes_expired_refused_and_forgotten_uploads(
    client: httpx.Client, db: Database, settings: Settings, tenant: Tenant, tech: Account
) -> None:
    fresh_pending = _intent(client, tech.headers)
    old_pending = _intent(client, tech.headers)
    kept = _complete_upload(client, tech)
    claimed = _complete_upload(client, tech)
    forgotten = _complete_upload(client, tech)
    with db.transaction(tenant=tenant.id) as session:
        service.claim(session, _caller(tech), claimed["storageKey"], "TICKET_ATTACHMENT")
    store = storage.storage_for(settings.data_dir)
    part, stream = store.open_part(old_pending["storageKey"])
    stream.close()
    os.utime(part, (0, 0))  # a temporary file an interrupted upload left long ago
    now = utcnow() + timedelta(hours=2)
    with db.transaction(tenant=ALL_TENANTS) as session:
        row = session.get_one(Upload, uuid.UUID(forgotten["uploadId"]))
        row.completed_at = utcnow() - timedelta(days=8)
        session.flush()
        result = service.cleanup(session, data_dir=settings.data_dir, now=now)
    assert (result.rows, result.files, result.parts) == (3, 1, 1)
    with db.transaction(tenant=ALL_TENANTS) as session:
        left = set(map(str, session.scalars(select(Upload.id))))
    assert left == {kept["uploadId"], claimed["uploadId"]}
    assert not part.exists()
    assert {p.name for p in _files(settings, tenant.id)} == {
        kept["storageKey"].split("/")[1],
        claimed["storageKey"].split("/")[1],
    }
    assert fresh_pending["uploadId"] not in left  # its link expired in the two hours


def test_cleanup_job_runs_under_a_lease(db: Database, settings: Settings) -> None:
    service.cleanup_job(db, settings)
    with db.transaction(tenant=ALL_TENANTS) as session:
        assert session.get(JobLease, "uploads.cleanup") is not None
