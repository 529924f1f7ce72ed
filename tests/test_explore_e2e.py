"""The explorer end to end, in a real browser: `dsim-explore` in a subprocess, headless Chromium
(Debian's package, driven by Playwright through its executable_path: browser downloads are not
possible here), a control moved, the plots and the command line changed.

Skips only when no Chromium is installed locally; CI installs it (.ci/run), so it runs there.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CANDIDATES = (os.environ.get("DSIM_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
              "/usr/bin/chromium")
CHROMIUM = next((p for p in CANDIDATES if p and Path(p).is_file()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed: apt-get install -y "
                                "chromium (CI installs it in .ci/run)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`dsim-explore --port 0` (a free port), started from a folder that is not the repository."""
    cwd = tmp_path_factory.mktemp("explore")
    t0 = time.monotonic()
    script = Path(sys.executable).with_name("dsim-explore")  # the installed console script
    start = [str(script)] if script.is_file() else [sys.executable, "-m", "sim.explore.cli"]
    proc = subprocess.Popen([*start, "--port", "0"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
    assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
    yield match.group(1), line, t0
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_moving_a_control_in_the_browser_changes_the_plots(server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, banner, t0 = server
    assert "this machine only" in banner  # it says where it listens
    failed = []
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                   headless=True, args=ARGS,
                                                   viewport={"width": 1500, "height": 1100})
        try:
            page = ctx.new_page()
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(url)
            # a small run: fewer replications and two years, typed as a user would
            page.get_by_label("Replications").fill("300")
            page.get_by_label("More settings (key=value, as on the dsim command line)").fill(
                "scenario.weeks=156")
            command = page.locator("pre").first
            page.wait_for_function("() => document.querySelector('pre') && ['replications=300', "
                                   "'scenario.weeks=156'].every(s => document.querySelector('pre')"
                                   ".innerText.includes(s))", timeout=180_000)
            page.get_by_text("Done.").wait_for(timeout=120_000)
            first_answer = time.monotonic() - t0
            plot = page.locator("img.dsim-plot-escalation")
            before = plot.screenshot()
            assert "policy=rotational" in command.inner_text()

            page.locator(".v-select").filter(has_text="US posture").click()
            page.locator(".v-menu__content .v-list-item").filter(has_text="permanent").click()
            page.wait_for_function("() => document.querySelector('pre').innerText"
                                   ".includes('policy=permanent')", timeout=120_000)
            page.get_by_text("Done.").wait_for(timeout=120_000)
            assert plot.screenshot() != before  # the curves changed on screen
            text = page.locator("body").inner_text()
            assert "posture permanent" in text
            assert re.search(r"p_kinetic_clash\s+probability", text)  # the metrics table is shown
            page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
        finally:
            ctx.close()
    assert (tmp_path / "explorer.png").stat().st_size > 10_000
    assert failed == []  # everything the page needs comes from the server (no CDN)
    print(f"first answer {first_answer:.1f} s after starting dsim-explore")
