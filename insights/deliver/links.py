"""Signed, expiring report links: open one report file of one tenant without an API token.

The rule (like a presigned URL): a link is `<base>/<tenant>/<path>?expires=<unix seconds>&sig=<s>`
where `s` is the URL-safe base64 (no padding) HMAC-SHA256, keyed by INSIGHTS_REPORT_LINK_SECRET,
of `v1 NUL tenant NUL normalised path NUL expires`. A signature opens exactly that tenant's
folder and that path until `expires`; any other tenant, path or expiry fails to verify.
Signatures are compared in constant time. The secret itself is never part of a link.

Normalised path: `/`-separated, no leading or repeated `/`, no `.` segments; a `..` segment or a
NUL makes the path unsignable (None), so a link can never name a file outside the folder.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Literal

from insights.config import Settings
from insights.errors import UserError

MIN_SECRET_LENGTH = 32

LinkCheck = Literal["valid", "expired", "invalid"]


def normalise_path(path: str) -> str | None:
    """`path` in its signed form (`a//./b.html` → `a/b.html`), or None if it may not be signed."""
    if "\0" in path or "\\" in path:
        return None
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts)


def _message(tenant: str, path: str, expires: int) -> bytes:
    return b"\0".join([b"v1", tenant.encode(), path.encode(), str(expires).encode()])


def sign(secret: str, tenant: str, path: str, expires_at: int) -> str:
    """The signature of `tenant`'s `path` valid until the unix time `expires_at`."""
    normal = normalise_path(path)
    if normal is None or not tenant or "\0" in tenant or "/" in tenant:
        raise UserError(f"report link {tenant}/{path}: not a path inside the tenant's reports")
    digest = hmac.new(secret.encode(), _message(tenant, normal, expires_at), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")


def verify(secret: str, tenant: str, path: str, expires: str, sig: str, now: datetime) -> LinkCheck:
    """Check a link's `expires` and `sig` query values for `tenant` and `path` at `now`.

    `invalid` for a signature that does not match (tampered, other tenant, other path, other
    expiry, malformed); `expired` only for a genuine signature past its expiry.
    """
    normal = normalise_path(path)
    if normal is None or not tenant or "\0" in tenant or "/" in tenant:
        return "invalid"
    if not expires.isascii() or not expires.isdigit() or len(expires) > 12:
        return "invalid"
    expected = sign(secret, tenant, normal, int(expires))
    if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
        return "invalid"
    return "expired" if now.timestamp() >= int(expires) else "valid"


def link_secret(settings: Settings) -> str | None:
    """INSIGHTS_REPORT_LINK_SECRET, or None when unset; too short is a UserError."""
    if settings.report_link_secret is None:
        return None
    value = settings.report_link_secret.get_secret_value()
    if not value:
        return None
    if len(value) < MIN_SECRET_LENGTH:
        raise UserError(
            f"INSIGHTS_REPORT_LINK_SECRET: too short (at least {MIN_SECRET_LENGTH} characters; "
            "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return value


def signed_query(secret: str, tenant: str, path: str, expires_at: int) -> str:
    """`expires=…&sig=…` for `tenant`'s `path`."""
    return f"expires={expires_at}&sig={sign(secret, tenant, path, expires_at)}"


def signed_report_url(settings: Settings, tenant: str, relative_path: str, now: datetime) -> str:
    """The signed link to `relative_path` (inside the tenant's report folder), valid for
    INSIGHTS_REPORT_LINK_TTL_DAYS from `now`.

    The URL is `<INSIGHTS_REPORT_BASE_URL>/<tenant>/<path>`: the base is the API's `/reports`
    URL; a `{tenant}` in the base is replaced instead of appending the tenant.
    """
    secret = link_secret(settings)
    base = settings.report_base_url.strip()
    if secret is None or not base:
        raise UserError(
            "signed report links need INSIGHTS_REPORT_BASE_URL and INSIGHTS_REPORT_LINK_SECRET"
        )
    normal = normalise_path(relative_path)
    if normal is None:
        raise UserError(f"report link {relative_path!r}: not a path inside the tenant's reports")
    expires_at = int((now + timedelta(days=settings.report_link_ttl_days)).timestamp())
    if "{tenant}" in base:
        folder = base.replace("{tenant}", tenant).rstrip("/")
    else:
        folder = f"{base.rstrip('/')}/{tenant}"
    return f"{folder}/{normal}?{signed_query(secret, tenant, normal, expires_at)}"
