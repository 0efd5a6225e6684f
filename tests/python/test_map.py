"""`shequ map` in a real browser: headless Chromium (Debian's, driven by Playwright).

The page must render every grid, make no request beyond its own file, log no console error or
warning, show hover details and a legend, and switch indicator. A screenshot is taken.
"""

import json
import os
import pathlib
import shutil
import subprocess

import pytest
from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data-samples" / "sample-city"
BIN = os.environ.get("SHEQU_BIN", str(ROOT / "target" / "debug" / "shequ"))
CHROMIUM = os.environ.get("SHEQU_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
# As the machine notes say: no background networking, no component updates, a fresh profile.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    subprocess.run([BIN, "run", "--quiet", str(SAMPLE / "job.toml"), "--out", str(d)], check=True)
    return d


def test_run_writes_the_map_and_lists_it(out):
    assert (out / "map.html").is_file()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert "map.html" in manifest["outputs"]


def test_map_renders_offline_in_headless_chromium(out, tmp_path):
    html = tmp_path / "map.html"
    p = subprocess.run(
        [BIN, "map", str(out), "--to", str(html)], capture_output=True, text=True, check=True
    )
    assert str(html) in p.stdout
    grids = json.loads((out / "grids.geojson").read_text(encoding="utf-8"))["features"]
    expected = sum(1 for f in grids if f["geometry"] is not None)
    assert expected == 28
    blind = json.loads((out / "coverage" / "grid.geojson").read_text(encoding="utf-8"))["features"]
    expected_blind = sum(
        1
        for f in blind
        if any(v is True for k, v in f["properties"].items() if k.endswith("_blind_spot"))
    )

    console, errors, requests = [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: console.append((m.type, m.text)))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))

        def route(r):
            requests.append(r.request.url)
            if r.request.url == html.as_uri():
                r.continue_()
            else:
                r.abort()

        page.route("**/*", route)
        page.goto(html.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=15_000)

        assert page.locator("path.grid").count() == expected
        assert page.locator("path.grid.blind").count() == expected_blind > 0
        facilities = json.loads((out / "facilities.geojson").read_text(encoding="utf-8"))
        assert page.locator("circle.facility").count() == len(facilities["features"])
        # Every grid is filled: a colour class or the hatching for hidden values.
        fills = page.eval_on_selector_all("path.grid", "els => els.map(e => e.getAttribute('fill'))")
        assert all(f and (f.startswith("#") or f == "url(#hidden)") for f in fills)
        assert any(f.startswith("#") for f in fills), "some grid is coloured"
        assert page.locator("#legend .row").count() >= 2

        # Hover details name the grid under the pointer.
        first = page.locator("path.grid").first
        first.hover()
        tip = page.locator("#tip")
        assert tip.is_visible()
        assert first.get_attribute("data-grid") in tip.inner_text()

        # Switching indicator recolours the grids and retitles the legend.
        page.select_option("#indicator", "residents")
        assert page.locator("#legend-title").inner_text() == "residents"
        after = page.eval_on_selector_all("path.grid", "els => els.map(e => e.getAttribute('fill'))")
        assert all(f.startswith("#") for f in after), "residents are published for every grid"

        shot = tmp_path / "map.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()

    assert requests == [html.as_uri()], requests
    assert errors == []
    assert [m for m in console if m[0] in ("error", "warning")] == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    keep = os.environ.get("SHEQU_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, pathlib.Path(keep) / "map.png")
