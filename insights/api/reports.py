"""`GET /reports/{path}`: the caller's tenant's HTML reports, from INSIGHTS_REPORTS_DIR/<tenant>/.

Only files inside the tenant's own folder are served: the path is resolved (symlinks too) and
must stay under that folder, so `..`, absolute paths and links out of it are a 404, exactly
like a file that does not exist. Another tenant's report is a 404 as well.

Signed links (insights/deliver/links.py) open a report in a browser without a token:
`GET /reports/<tenant>/<path>?expires=…&sig=…`. A request with a `sig` query parameter is
judged by its signature alone: it must be valid for exactly that tenant folder and path and not
expired, else 401 (with INSIGHTS_REPORT_LINK_SECRET unset every signature is invalid). Without
`sig` the request needs the Bearer token and the path is inside the token's tenant (as before).
An HTML file served through a signed link has its relative links (`../index.html`, the index's
report links) signed with the same expiry, so the reader can move between the tenant's reports
until the link expires, and never beyond that tenant's folder.
"""

from __future__ import annotations

import html
import mimetypes
import posixpath
import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from insights.api.auth import BearerCredentials, CallerDep, current_caller
from insights.deliver import links
from insights.timeutil import now

router = APIRouter(tags=["reports"])


def tenant_file(reports_dir: Path, tenant: str, path: str) -> Path | None:
    """The file `path` names inside `reports_dir/tenant`, or None if it is not one.

    An empty path or a folder means its `index.html`.
    """
    if "\0" in path or tenant in ("", ".", "..") or "/" in tenant or "\\" in tenant:
        return None
    base = (reports_dir / tenant).resolve()
    candidate = (base / path.lstrip("/")).resolve()
    if not candidate.is_relative_to(base):
        return None
    if candidate.is_dir():
        candidate = candidate / "index.html"
    return candidate if candidate.is_file() else None


HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
# a signed URL must not leak to other sites through the Referer header
SIGNED_HEADERS = {**HEADERS, "Referrer-Policy": "no-referrer"}
_HREF = re.compile(r'href="([^"]*)"')


def _find(request: Request, tenant: str, path: str) -> Path:
    found = tenant_file(Path(request.app.state.settings.reports_dir), tenant, path)
    if found is None:
        raise HTTPException(404, f"report {path or 'index.html'!r}: not found")
    return found


def _serve(request: Request, tenant: str, path: str) -> FileResponse:
    found = _find(request, tenant, path)
    media_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
    return FileResponse(found, media_type=media_type, headers=HEADERS)


def _link_refused(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def sign_relative_links(
    page: str, secret: str, tenant: str, url_dir: str | None, file_dir: str, expires: int
) -> str:
    """`page` with every relative `href` that stays inside the tenant folder signed.

    `file_dir` is the page's folder inside the tenant folder (relative links resolve from it);
    `url_dir` is the folder the browser resolves from (they differ when a folder URL serves its
    `index.html`; None for `/reports/acme`, which the browser resolves from `/reports/`).
    Absolute URLs, fragments, links with a query and links leaving the folder stay as they are.
    """

    def replace(match: re.Match[str]) -> str:
        href = html.unescape(match.group(1))
        target, _, fragment = href.partition("#")
        if not target or "?" in target or ":" in target.split("/")[0] or target.startswith("/"):
            return match.group(0)
        resolved = links.normalise_path(posixpath.normpath(posixpath.join(file_dir, target)))
        if resolved is None or resolved in ("", "."):
            return match.group(0)
        if url_dir is None:
            relative = f"{tenant}/{resolved}"
        else:
            relative = posixpath.relpath(resolved, url_dir or ".")
        query = links.signed_query(secret, tenant, resolved, expires)
        signed = f"{relative}?{query}" + (f"#{fragment}" if fragment else "")
        return f'href="{html.escape(signed)}"'

    return _HREF.sub(replace, page)


def _serve_signed(request: Request, full_path: str, expires: str, sig: str) -> Response:
    """A file opened by a signed link (`full_path` is `<tenant>/<path>`)."""
    tenant, slash, path = full_path.partition("/")
    secret = links.link_secret(request.app.state.settings)
    if secret is None:
        raise _link_refused("report link: signed links are not enabled on this server")
    check = links.verify(secret, tenant, path, expires, sig, now())
    if check == "expired":
        raise _link_refused("report link expired: open the newest digest or use a token")
    if check != "valid":
        raise _link_refused("report link: invalid signature")
    found = _find(request, tenant, path)
    media_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
    if media_type != "text/html":
        return FileResponse(found, media_type=media_type, headers=SIGNED_HEADERS)
    base = (Path(request.app.state.settings.reports_dir) / tenant).resolve()
    file_dir = found.parent.relative_to(base).as_posix()
    normal = links.normalise_path(path) or ""
    if not slash:  # `/reports/acme`: the browser resolves links from `/reports/`
        url_dir = None
    elif path.endswith("/") or normal == "":
        url_dir = normal
    else:
        url_dir = posixpath.dirname(normal)
    page = sign_relative_links(
        found.read_text(encoding="utf-8"),
        secret,
        tenant,
        url_dir,
        "" if file_dir == "." else file_dir,
        int(expires),
    )
    return HTMLResponse(page, headers=SIGNED_HEADERS)


@router.get(
    "/reports/",
    summary="The tenant's report index",
    response_class=FileResponse,
    responses={401: {"description": "Missing, wrong or revoked token."}, 404: {}},
)
def report_index(request: Request, caller: CallerDep) -> FileResponse:
    return _serve(request, caller.tenant, "")


@router.get(
    "/reports/{path:path}",
    summary="One file of the tenant's reports",
    response_class=FileResponse,
    responses={401: {"description": "Missing, wrong or revoked token."}, 404: {}},
)
def report_file(
    path: str,
    request: Request,
    credentials: BearerCredentials,
    expires: str | None = None,
    sig: str | None = None,
) -> Response:
    """A report file of the caller's tenant (`/reports/checkout/2026-W05.html`, Bearer token),
    or of the tenant a signed link names (`/reports/acme/2026-W05/team-payments.html?expires=…
    &sig=…`)."""
    if sig is not None:
        return _serve_signed(request, path, expires or "", sig)
    caller = current_caller(request, credentials)
    return _serve(request, caller.tenant, path)
