"""The run report: written by every run, checked in a real headless Chromium (Debian's chromium via Playwright)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from pathlib import Path
from urllib.parse import unquote

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from cli import main
from jobs.episode import run_episode
from jobs.manifest import RESULTS_FOLDER, RUN_RECORD_NAME, SPEC_COPY_NAME, ShotRecord, results_table
from jobs.plan import plan_episode
from jobs.report import REPORT_FOLDER, ShotReport, render, write_report
from jobs.spec import load_spec
from pipeline.status import ShotStatus
from tests.jobs.sample_episode import write_episode_spec
from tests.reliability.leaking_shot import SAMPLE, leaking_colors, write_colored_shot

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


@pytest.mark.slow
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


@pytest.mark.slow
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
    shot = ShotReport(ShotRecord("<script>alert(1)</script>", ShotStatus.FAILED, error='bad "frame" <b>x</b> & more'))
    page = render("/out", [shot], {})
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt; &amp; more" in page


@pytest.fixture(scope="module")
def leaking_run(tmp_path_factory) -> Path:
    """An output with two shots of the sample as a run leaves them: "wave", its ground truth, and "wave-leaking",
    the same with skin paint on the paper between arm and head on frames 4, 8 and 9; the report written."""
    output = tmp_path_factory.mktemp("leaking") / "out"
    write_colored_shot(output, "wave", leaking_colors({}))
    write_colored_shot(output, "wave-leaking", leaking_colors())
    (output / SPEC_COPY_NAME).write_text(json.dumps({"episode": "sample", "resolution": 256}))
    run = {"started": "2026-12-04T06:00:00+00:00", "wall_seconds": 14.2, "colored": ["wave", "wave-leaking"]}
    (output / RUN_RECORD_NAME).write_text(json.dumps(run))
    write_report(str(output))
    return output


@pytest.mark.slow
def test_the_page_lists_every_flagged_frame_and_puts_the_leaking_shot_first(browser, leaking_run) -> None:
    page, failed = open_report(browser, leaking_run / REPORT_FOLDER / "index.html")
    assert failed == []
    shots = page.evaluate("Array.from(document.querySelectorAll('div.shot')).map(d => d.id)")
    assert shots == ["shot-wave-leaking", "shot-wave"]  # both ok: the one that leaks is the more suspicious
    flagged = page.evaluate("Array.from(document.querySelectorAll('#shot-wave-leaking table.flagged tr'))"
                            ".slice(1).map(r => Array.from(r.cells).map(c => c.innerText))")  # fmt: skip
    assert [(frame, signal) for frame, signal, _ in flagged] == [
        ("frame4.png", "paint on paper"), ("frame8.png", "paint on paper"), ("frame9.png", "paint on paper")
    ]  # fmt: skip
    assert all(1_000 <= int(pixels.replace(",", "")) <= 2_000 for _, _, pixels in flagged), flagged
    assert "3 of 12 frames flagged" in page.inner_text("#shot-wave-leaking")
    assert "no frame flagged" in page.inner_text("#shot-wave")
    assert page.query_selector("#shot-wave table.flagged") is None
    screenshot = Path(os.environ.get("INKPAINT_REPORT_SCREENSHOT", leaking_run.parent / "report.png"))
    page.set_viewport_size({"width": 1000, "height": 800})
    page.screenshot(path=str(screenshot), full_page=True)  # docs/report.png: INKPAINT_REPORT_SCREENSHOT=docs/...
    with Image.open(screenshot) as picture:
        assert picture.width >= 600 and picture.height >= 600


def _text(label: str) -> np.ndarray:
    """`label` as the contact sheet draws it (default font, black on a white RGB sheet), cut to its ink."""
    canvas = Image.new("RGB", (160, 20), "white")
    ImageDraw.Draw(canvas).text((0, 0), label, fill="black")
    ink = np.asarray(canvas.convert("L"))
    rows, columns = np.flatnonzero((ink < 255).any(axis=1)), np.flatnonzero((ink < 255).any(axis=0))
    return ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]


def _drawn_on(sheet: np.ndarray, label: str) -> bool:
    """Whether `label` is drawn on the sheet, pixel for pixel (the best match, checked exactly)."""
    text = _text(label)
    distances = cv2.matchTemplate(sheet, text, cv2.TM_SQDIFF)
    y, x = np.unravel_index(distances.argmin(), distances.shape)
    return np.array_equal(sheet[y : y + text.shape[0], x : x + text.shape[1]], text)


def test_the_contact_sheet_labels_its_tiles_with_the_frames_names(leaking_run) -> None:
    sheet = np.asarray(Image.open(leaking_run / REPORT_FOLDER / "wave-leaking-sheet.png").convert("L"))
    # Eight frames of twelve, evenly spaced, first and last included: the sheet names them as the files are named.
    for name in ("frame1.png", "frame3.png", "frame4.png", "frame6.png", "frame7.png", "frame9.png", "frame10.png",
                 "frame12.png", "keyframe"):  # fmt: skip
        assert _drawn_on(sheet, name), name
    assert not _drawn_on(sheet, "frame 8")  # a tile's place on the sheet is no frame's name


@pytest.fixture(scope="module")
def relative_shot_run(tmp_path_factory) -> Path:
    """colorize-shot run as a studio types it, with paths relative to its own folder (the first 4 frames of the
    sample, the video in another folder than the frames'); that folder."""
    studio = tmp_path_factory.mktemp("studio")
    (studio / "frames").mkdir()
    for number in range(1, 5):
        shutil.copy(SAMPLE / "frames" / f"frame{number}.png", studio / "frames")
    shutil.copy(SAMPLE / "key.png", studio / "key.png")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(studio)
        result = CliRunner().invoke(main, ["shot", "frames", "-r", "key.png", "-o", "out", "--video",
                                           "films/wave.mp4", "--resolution", "128"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return studio


@pytest.mark.slow
def test_the_report_written_from_another_folder_finds_the_keyframe_and_the_frames(relative_shot_run, tmp_path,
                                                                                   monkeypatch) -> None:  # fmt: skip
    output = relative_shot_run / "out"
    shutil.rmtree(output / REPORT_FOLDER)
    monkeypatch.chdir(tmp_path)  # not the studio's folder, which the run's paths are relative to
    result = CliRunner().invoke(main, ["report", str(output)])
    assert result.exit_code == 0, result.output
    page = (output / REPORT_FOLDER / "index.html").read_text()
    assert '<img src="frames-key.png" alt="keyframe of frames">' in page
    assert '<img src="frames-strip.png" alt="line art and colored frames of frames">' in page
    with Image.open(output / REPORT_FOLDER / "frames-strip.png") as strip:
        assert strip.width > 4 * 120  # a line-art and a colored tile for each of the 4 frames


@pytest.mark.slow
def test_the_video_link_is_relative_to_the_page(browser, relative_shot_run, monkeypatch) -> None:
    monkeypatch.chdir(relative_shot_run.parent)
    CliRunner().invoke(main, ["report", str(relative_shot_run / "out")], catch_exceptions=False)
    index = relative_shot_run / "out" / REPORT_FOLDER / "index.html"
    [source] = re.findall(r'<video [^>]*src="([^"]*)"', index.read_text())
    assert not source.startswith("/") and "://" not in source, source
    assert (index.parent / unquote(source)).resolve() == relative_shot_run / "films" / "wave.mp4"
    page, failed = open_report(browser, index)
    page.wait_for_function("Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 1 || v.error)")
    assert page.evaluate("document.querySelector('video').error") is None and failed == []


@pytest.mark.slow
def test_the_report_shows_the_wall_time_of_a_colorize_shot_run(relative_shot_run) -> None:
    page = (relative_shot_run / "out" / REPORT_FOLDER / "index.html").read_text()
    assert re.search(r'id="wall">\d+\.\d s, started 20\d\d-', page), re.search(r'id="wall">[^<]*', page)


@pytest.mark.slow
def test_the_worker_is_shown_by_its_host_name_with_the_ray_node_as_a_tooltip(browser, relative_shot_run) -> None:
    page, _ = open_report(browser, relative_shot_run / "out" / REPORT_FOLDER / "index.html")
    shown = page.inner_text("#shot-frames")
    assert f"on {socket.gethostname()}" in shown
    assert not re.search(r"[0-9a-f]{40}", shown), shown  # no Ray node id in the text
    assert re.fullmatch(r"Ray node [0-9a-f]{40,}", page.get_attribute("#shot-frames .worker", "title"))
