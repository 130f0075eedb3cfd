"""scripts/screenshot.sh renders a demo report to PNG with headless Chromium (skipped, with the
reason, when no Chromium is installed)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from report_support import make_report

from insights.deliver.html import write_report
from insights.metrics.result import SlowChange
from insights.narrate.builtin import as_result as builtin_result
from insights.narrate.facts import build_facts

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "screenshot.sh"
BROWSER = next(
    (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
)


def _report(tmp_path: Path) -> Path:
    report = make_report(
        slowest=[
            SlowChange(
                service="checkout",
                id="1",
                title="<script>alert(1)</script>",
                lead_time_hours=90.0,
                review=60.0,
            )
        ]
    )
    result = builtin_result(build_facts(report))
    return write_report(tmp_path, report, result, [], datetime(2026, 2, 10, tzinfo=UTC))


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
@pytest.mark.skipif(BROWSER is None, reason="no chromium installed (apt-get install -y chromium)")
@pytest.mark.parametrize(("width", "height"), [(1280, 2400), (390, 1600)])
def test_report_renders_to_png_in_headless_chromium(tmp_path: Path, width: int, height: int):
    html = _report(tmp_path)
    png = tmp_path / "shot.png"
    run = subprocess.run(
        [str(SCRIPT), str(html), str(png), str(width), str(height)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(png)
    assert _png_size(png) == (width, height)
    assert png.stat().st_size > 20_000  # a rendered page, not a blank image


def test_missing_browser_is_a_clear_error(tmp_path: Path):
    html = _report(tmp_path)
    env = {**os.environ, "CHROMIUM": "/nonexistent/chromium"}
    run = subprocess.run(
        [str(SCRIPT), str(html), str(tmp_path / "x.png")], capture_output=True, text=True, env=env
    )
    assert run.returncode == 3
    assert run.stderr.strip() == "screenshot: CHROMIUM=/nonexistent/chromium: not an executable"


def test_missing_report_file_is_named(tmp_path: Path):
    run = subprocess.run(
        [str(SCRIPT), str(tmp_path / "nope.html"), str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert run.stderr.strip() == f"screenshot: {tmp_path / 'nope.html'}: file not found"
