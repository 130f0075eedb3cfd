"""Signed, expiring report links: a Slack digest's button opens the report in a browser without
an API token, for exactly that tenant and path, until it expires; the secret never leaks."""

from __future__ import annotations

import html
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from api_support import make_api, sqlite_only
from fastapi.testclient import TestClient
from metrics_support import commit, dep, incident
from typer.testing import CliRunner

from insights import pipeline
from insights.api.app import create_app
from insights.cli import app as cli_app
from insights.config import Settings
from insights.deliver import links
from insights.errors import UserError
from insights.model import parse_event
from insights.ops.weekly import build_week, report_url, team_digests
from insights.store.db import unit_of_work
from insights.store.repository import TenantRepository

SECRET = "link-secret-for-tests-0123456789-abcdef"
BASE = "http://testserver/reports"
AT = datetime(2026, 2, 3, 7, 0, tzinfo=UTC)  # the last complete week is 2026-W05
NOW = datetime.now(UTC)


@pytest.fixture
def api(db, tmp_path, monkeypatch):
    monkeypatch.setenv("INSIGHTS_REPORT_LINK_SECRET", SECRET)
    monkeypatch.setenv("INSIGHTS_REPORT_BASE_URL", BASE)
    yield from make_api(db, tmp_path, monkeypatch)


def write_reports(api) -> None:
    base = api.settings.reports_dir
    (base / "acme" / "2026-W05").mkdir(parents=True)
    (base / "globex" / "2026-W05").mkdir(parents=True)
    (base / "acme" / "index.html").write_text(
        '<h1>acme index</h1><a href="2026-W05/team-payments.html">payments</a>'
        '<a href="https://example.com/x">docs</a><a href="#top">top</a>'
    )
    (base / "acme" / "2026-W05" / "team-payments.html").write_text(
        '<h1>acme payments</h1><a href="../index.html">acme</a>'
        '<a href="tenant.html#lead">tenant</a><a href="../../globex/2026-W05/x.html">out</a>'
    )
    (base / "acme" / "2026-W05" / "tenant.html").write_text("<h1>acme tenant</h1>")
    (base / "globex" / "2026-W05" / "team-payments.html").write_text("<h1>globex only</h1>")


def signed(tenant: str, path: str, expires: datetime | None = None) -> str:
    at = int((expires or NOW + timedelta(days=1)).timestamp())
    return f"/reports/{tenant}/{path}?expires={at}&sig={links.sign(SECRET, tenant, path, at)}"


@sqlite_only
def test_a_signed_link_opens_the_report_without_a_token(api):
    write_reports(api)
    response = api.client.get(signed("acme", "2026-W05/team-payments.html"))
    assert response.status_code == 200 and "acme payments" in response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "private, no-store"


@sqlite_only
@pytest.mark.parametrize(
    "mangle",
    [
        lambda url: url[:-2] + ("AA" if not url.endswith("AA") else "BB"),  # tampered signature
        lambda url: url.replace("team-payments.html", "tenant.html"),  # other path
        lambda url: url.replace("/reports/acme/", "/reports/globex/"),  # other tenant
        lambda url: re.sub(r"expires=(\d+)", lambda m: f"expires={int(m[1]) + 1}", url),
        lambda url: url.split("&sig=")[0] + "&sig=",  # empty signature
        lambda url: url.replace("expires=", "x="),  # no expiry
    ],
    ids=["tampered", "other-path", "other-tenant", "longer-expiry", "empty-sig", "no-expires"],
)
def test_a_changed_signed_link_is_refused(api, mangle):
    write_reports(api)
    url = mangle(signed("acme", "2026-W05/team-payments.html"))
    response = api.client.get(url)
    assert response.status_code == 401, response.text
    assert response.json()["detail"] == "report link: invalid signature"
    assert "only" not in response.text and "payments</h1>" not in response.text


@sqlite_only
def test_an_expired_link_is_refused_and_a_link_without_signature_needs_the_token(api):
    write_reports(api)
    expired = api.client.get(
        signed("acme", "2026-W05/team-payments.html", NOW - timedelta(seconds=1))
    )
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    plain = api.client.get("/reports/acme/2026-W05/team-payments.html?expires=99999999999")
    assert plain.status_code == 401 and plain.headers["www-authenticate"] == "Bearer"


@sqlite_only
def test_a_signed_link_cannot_leave_the_tenant_folder(api):
    write_reports(api)
    (api.settings.reports_dir / "acme" / "escape.html").symlink_to(
        api.settings.reports_dir / "globex" / "2026-W05" / "team-payments.html"
    )
    assert api.client.get(signed("acme", "escape.html")).status_code == 404
    with pytest.raises(UserError, match="not a path inside"):
        links.sign(SECRET, "acme", "../globex/2026-W05/team-payments.html", 2**40)
    assert links.verify(SECRET, "acme", "../x.html", "99999999999", "x", NOW) == "invalid"
    assert api.client.get(signed("acme", "2026-W05/missing.html")).status_code == 404


@sqlite_only
def test_links_inside_a_signed_page_are_signed_for_their_own_path_only(api):
    write_reports(api)
    first = api.client.get(signed("acme", "2026-W05/team-payments.html"))
    hrefs = re.findall(r'href="([^"]*)"', first.text)
    back, tenant, outside = (h.replace("&amp;", "&") for h in hrefs)
    assert back.startswith("../index.html?expires=") and "#lead" in tenant
    assert outside == "../../globex/2026-W05/x.html"  # leaves the folder: left unsigned
    page = "http://testserver/reports/acme/2026-W05/team-payments.html"
    index = api.client.get(urljoin(page, back))
    assert index.status_code == 200 and "acme index" in index.text
    assert api.client.get(urljoin(page, tenant.split("#")[0])).text == "<h1>acme tenant</h1>"
    # same expiry as the link that was opened: following links never extends it
    assert parse_qs(urlsplit(back).query)["expires"] == parse_qs(urlsplit(tenant).query)["expires"]
    # the index's own links lead back to the team report; external links stay untouched
    forward = re.findall(r'href="([^"]*)"', index.text)
    assert forward[1:] == ["https://example.com/x", "#top"]
    again = api.client.get(urljoin(urljoin(page, back), forward[0].replace("&amp;", "&")))
    assert again.status_code == 200 and "acme payments" in again.text
    # a signature of the index does not open any other file
    sig = parse_qs(urlsplit(back).query)
    other = f"/reports/acme/2026-W05/tenant.html?expires={sig['expires'][0]}&sig={sig['sig'][0]}"
    assert api.client.get(other).status_code == 401


@sqlite_only
def test_a_signed_folder_url_signs_links_relative_to_what_the_browser_sees(api):
    write_reports(api)
    for path, prefix in (("", "2026-W05/"), ("/", "2026-W05/")):
        at = int((NOW + timedelta(days=1)).timestamp())
        url = f"/reports/acme{path}?expires={at}&sig={links.sign(SECRET, 'acme', '', at)}"
        response = api.client.get(url)
        assert response.status_code == 200 and "acme index" in response.text
        first = re.findall(r'href="([^"]*)"', response.text)[0].replace("&amp;", "&")
        followed = api.client.get(urljoin(f"http://testserver{url}", first))
        assert followed.status_code == 200 and "acme payments" in followed.text
        assert first.startswith(prefix if path else "acme/" + prefix)


@sqlite_only
def test_signed_links_are_refused_when_the_server_has_no_secret(db, tmp_path):
    reports = tmp_path / "reports"
    (reports / "acme").mkdir(parents=True)
    (reports / "acme" / "index.html").write_text("<h1>acme index</h1>")
    app = create_app(Settings(database_url=db.url, reports_dir=reports))
    with TestClient(app) as client:
        response = client.get(signed("acme", "index.html"))
    assert response.status_code == 401
    assert response.json()["detail"] == ("report link: signed links are not enabled on this server")


def test_a_short_secret_is_a_one_line_error_naming_the_setting(db, tmp_path):
    weak = Settings(database_url=db.url, reports_dir=tmp_path, report_link_secret="short")
    with pytest.raises(UserError) as err:
        create_app(weak)
    assert str(err.value).startswith("INSIGHTS_REPORT_LINK_SECRET: too short")
    assert "short'" not in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="INSIGHTS_REPORT_LINK_SECRET: too short"):
        build_week(db.engine, weak, Settings().organisation().tenant("acme"), None, AT)


def test_the_ttl_setting_sets_the_expiry_and_the_secret_is_hidden_in_settings(tmp_path):
    settings = Settings(
        database_url="sqlite://",
        report_base_url="https://insights.example/reports/{tenant}",
        report_link_secret=SECRET,
        report_link_ttl_days=3,
    )
    url = signed_url = links.signed_report_url(settings, "acme", "2026-W05/x.html", AT)
    assert url.startswith("https://insights.example/reports/acme/2026-W05/x.html?expires=")
    assert parse_qs(urlsplit(signed_url).query)["expires"] == [
        str(int((AT + timedelta(days=3)).timestamp()))
    ]
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
    with pytest.raises(ValueError):
        Settings(database_url="sqlite://", report_link_ttl_days=0)
    out = tmp_path / "reports"
    plain = Settings(database_url="sqlite://", report_base_url="https://r.example/{tenant}/")
    path = out / "acme" / "2026-W05" / "team-payments.html"
    assert report_url(plain, out, "acme", path) == (
        "https://r.example/acme/2026-W05/team-payments.html"
    )


def seed_week(api) -> None:
    events = [
        commit("aaa1", "01-26 09:00"),
        commit("aaa2", "01-27 10:00", ("aaa1",)),
        dep("d1", "aaa1", "01-26 15:00", commits=["aaa1"]),
        dep("d2", "aaa2", "01-28 12:00", commits=["aaa2"]),
        incident("INC-1", "01-28 13:00", "01-28 15:30", deployment_id="d2"),
    ]
    tenant = api.settings.organisation().tenant("acme")
    with unit_of_work(api.db.engine) as session:
        repo = TenantRepository.open(session, "acme")
        pipeline.store_events(
            repo, [parse_event(e) for e in events], create_services=False, tenant_config=tenant
        )


def test_the_digest_button_opens_the_report_through_the_api(api, caplog):
    caplog.set_level(logging.DEBUG)
    seed_week(api)
    tenant = api.settings.organisation().tenant("acme")
    build = build_week(api.db.engine, api.settings, tenant, "2026-W05", AT)
    [(team, payload)] = team_digests(build, api.settings)
    url = payload["blocks"][-1]["elements"][0]["url"]
    assert team == "payments"
    assert url.startswith(f"{BASE}/acme/2026-W05/team-payments.html?expires=")
    response = api.client.get(url)  # no Authorization header, as a browser
    assert response.status_code == 200
    assert "payments" in response.text and "2026-W05" in response.text
    back = html.unescape(re.search(r'href="(\.\./index[^"]*)"', response.text)[1])
    index = api.client.get(urljoin(url, back))
    assert index.status_code == 200 and "team-payments.html?expires=" in index.text
    # the secret appears nowhere: not in the payload, the pages, the files or the logs
    on_disk = [p.read_text() for p in api.settings.reports_dir.rglob("*.html")]
    for text in (json.dumps(payload), response.text, index.text, caplog.text, *on_disk):
        assert SECRET not in text
    assert "expires=" not in "".join(on_disk)  # signatures are added when served, not stored


@sqlite_only
@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("INSIGHTS_REPORT_LINK_TTL_DAYS", "0", "INSIGHTS_REPORT_LINK_TTL_DAYS: Input should be"),
        ("INSIGHTS_REPORT_LINK_TTL_DAYS", "two weeks", "INSIGHTS_REPORT_LINK_TTL_DAYS: Input"),
        ("INSIGHTS_REPORT_LINK_SECRET", "tiny-secret", "INSIGHTS_REPORT_LINK_SECRET: too short"),
    ],
)
def test_bad_link_settings_are_one_line_cli_errors(cli_env, monkeypatch, name, value, error):
    monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli_app, ["digest", "--tenant", "acme", "--dry-run"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {error}") and result.stderr.count("\n") == 1
    assert value not in result.stderr and value not in result.stdout
