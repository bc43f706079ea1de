"""The report renders in a real headless browser (Debian's chromium) with
every network path closed: the DOM it builds shows the verdict and the
findings, and a screenshot comes out. `make chromium` installs it; without
it the test is skipped with that reason."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.report import write_report
from tests.analysis.builders import rollout

CHROMIUM = Path("/usr/bin/chromium")
# no network: a blackhole proxy, every host name unresolvable, no background fetches
OFFLINE_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
    "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (run: make chromium)"),
]


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHROMIUM), *OFFLINE_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    d = rollout(tmp_path_factory.mktemp("browser") / "no-prestop", "no-prestop")
    write_report(d)
    return d / "index.html"


def test_dom_shows_verdict_and_findings(page, tmp_path):
    res = _chromium(["--dump-dom", page.as_uri()], tmp_path / "profile")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert 'class="verdict fail"' in dom and ">FAIL<" in dom
    assert "No preStop hook: pods stopped serving while still in the endpoints" in dom
    assert "preStop sleep &gt;= 1.5 s" in dom
    assert dom.count('src="data:image/png;base64,') == 3


def test_screenshot(page, tmp_path):
    shot = tmp_path / "report.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()], tmp_path / "profile")
    assert res.returncode == 0, res.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 50_000  # a rendered page, not a blank one
