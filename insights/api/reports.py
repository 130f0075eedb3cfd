"""`GET /reports/{path}`: the caller's tenant's HTML reports, from INSIGHTS_REPORTS_DIR/<tenant>/.

Only files inside the tenant's own folder are served: the path is resolved (symlinks too) and
must stay under that folder, so `..`, absolute paths and links out of it are a 404, exactly
like a file that does not exist. Another tenant's report is a 404 as well.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from insights.api.auth import CallerDep

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


def _serve(request: Request, tenant: str, path: str) -> FileResponse:
    found = tenant_file(Path(request.app.state.settings.reports_dir), tenant, path)
    if found is None:
        raise HTTPException(404, f"report {path or 'index.html'!r}: not found")
    media_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
    return FileResponse(
        found,
        media_type=media_type,
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )


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
def report_file(path: str, request: Request, caller: CallerDep) -> FileResponse:
    """A report file of the caller's tenant (`/reports/checkout/2026-W05.html`)."""
    return _serve(request, caller.tenant, path)
