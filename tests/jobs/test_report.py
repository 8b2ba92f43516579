"""The run report: written by every run, checked in a real headless Chromium (Debian's chromium via Playwright)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from cli import main
from jobs.episode import run_episode
from jobs.manifest import RESULTS_FOLDER, results_table
from jobs.plan import plan_episode
from jobs.report import REPORT_FOLDER, QualitySignals, ShotReport, render
from jobs.spec import load_spec
from tests.jobs.conftest import write_episode_spec

CHROMIUM = "/usr/bin/chromium"
# Flags for a closed network (see ARCHITECTURE.md's facts): no background connections, no sandbox as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def episode_run(episode_inputs, tmp_path_factory) -> Path:
    """The test episode with sh020's keyframe broken after planning (a planned run is checked first), so that
    sh020 fails as a whole; its output folder."""
    root = tmp_path_factory.mktemp("report")
    keys = root / "keys"
    keys.mkdir()
    for name in ("fox.png", "car.png"):
        shutil.copy(episode_inputs / "keys" / name, keys / name)
    keyframes = [
        {"name": "fox", "image": str(keys / "fox.png"), "shots": ["sh010", "sh030"]},
        {"name": "car", "image": str(keys / "car.png"), "shots": ["sh020"]},
    ]
    output = root / "out"
    plan = plan_episode(load_spec(str(write_episode_spec(episode_inputs, output, root / "ep.yaml",
                                                         keyframes=keyframes))))  # fmt: skip
    (keys / "car.png").write_bytes((episode_inputs / "keys" / "car.png").read_bytes()[:200])  # truncated meanwhile
    episode = run_episode(plan)
    assert [r.shot for r in episode.failed] == ["sh020"]
    return output


def open_report(browser, page_path: Path):
    page = browser.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    return page, failed


def test_the_report_loads_every_picture_and_video_and_puts_the_failure_first(browser, episode_run, tmp_path):
    index = episode_run / REPORT_FOLDER / "index.html"
    assert index.exists()  # written by the run itself
    page, failed = open_report(browser, index)
    images = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
    assert len(images) >= 4 and all(complete and width > 0 for _, complete, width in images), images
    page.wait_for_function("Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 1 || v.error)")
    videos = page.evaluate("Array.from(document.querySelectorAll('video')).map(v => [v.currentSrc, v.error])")
    assert len(videos) == 2 and all(error is None for _, error in videos), videos  # the two shots that ran
    assert failed == []
    shots = page.evaluate("Array.from(document.querySelectorAll('div.shot')).map(d => d.id)")
    assert shots[0] == "shot-sh020" and sorted(shots) == ["shot-sh010", "shot-sh020", "shot-sh030"]
    failures = page.inner_text("#failures")
    assert failures.startswith("sh020") and "car.png" in failures  # the message names the keyframe file
    table = results_table(str(episode_run))
    statuses = table.column("status").to_pylist()
    assert page.inner_text("#shots-ok") == str(statuses.count("ok")) == "2"
    assert page.inner_text("#shots-failed") == str(statuses.count("failed")) == "1"
    assert page.inner_text("#frames") == str(sum(table.column("written").to_pylist()))
    assert page.inner_text("#shots-skipped") == "0"
    assert " s, started 20" in page.inner_text("#wall")  # the run's own record, inkpaint-run.json
    assert "inkpaint-lite.safetensors" in page.inner_text("#summary")
    screenshot = tmp_path / "report.png"
    page.screenshot(path=str(screenshot), full_page=True)
    with Image.open(screenshot) as picture:
        assert picture.width >= 600 and picture.height >= 600
    contact_sheets = sorted(p.name for p in (episode_run / REPORT_FOLDER).glob("*-sheet.png"))
    assert contact_sheets == ["sh010-sheet.png", "sh030-sheet.png"]


def test_a_shot_without_a_result_is_marked_missing(episode_run, tmp_path) -> None:
    output = tmp_path / "out"
    shutil.copytree(episode_run, output)
    (output / RESULTS_FOLDER / "sh030.parquet").unlink()  # as if the run was killed before sh030 finished
    result = CliRunner().invoke(main, ["report", str(output)])
    assert result.exit_code == 0, result.output
    page = (output / REPORT_FOLDER / "index.html").read_text()
    assert '<td class="num" id="shots-missing">1</td>' in page
    assert "sh030</span>: no result: the shot was planned but did not finish" in page


def test_an_output_without_results_says_so(tmp_path) -> None:
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert f"no results found in {tmp_path}" in result.output
    assert "No results found in" in (tmp_path / REPORT_FOLDER / "index.html").read_text()


def test_names_and_messages_are_shown_as_text() -> None:
    shot = ShotReport(name="<script>alert(1)</script>", status="failed", error='bad "frame" <b>x</b> & more',
                      signals=QualitySignals())  # fmt: skip
    page = render("/out", [shot], {})
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt; &amp; more" in page
