"""The HTML dataset card: self-contained, and it renders in headless Chromium without errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from thfm_synth.report import write_report
from thfm_synth.report.card import svg_histogram

import test_preprocess_data as data

SECTIONS = ("counts", "licences", "histograms", "focal", "distance", "pose-pca", "pose-spread", "visibility",
            "gallery")


def chromium() -> str:
    """A Chromium binary; installs Debian's package when missing and apt-get is usable (root)."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300, env=env)
            subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], capture_output=True, timeout=600, env=env)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if path := shutil.which("chromium"):
            return path
    pytest.skip("Chromium is not installed and could not be installed with `apt-get install -y chromium`")


def headless(html_path, tmp_path, *extra) -> subprocess.CompletedProcess:
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-extensions",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=5000", *extra, html_path.resolve().as_uri()]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def console_messages(stderr: str, html_path) -> list[str]:
    """Chromium logs every console message and uncaught exception as `...:CONSOLE:...] "text", source: URL`."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return data.rendered(tmp_path_factory)


def check_self_contained(page: str):
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page.replace("http://www.w3.org/2000/svg", ""))
    assert not re.search(r'(?i)\b(src|href)\s*=\s*"(?!data:|#)', page)
    assert "<link" not in page and "@import" not in page and "url(" not in page


@pytest.mark.render
def test_card_of_a_render_output_renders_in_headless_chromium(rendered, tmp_path):
    out = tmp_path / "card.html"
    summary = write_report(rendered, out)
    page = out.read_text()
    check_self_contained(page)
    assert summary["counts"]["videos"] == data.NUM_VIDEOS and summary["counts"]["frames"] == 9 * data.NUM_VIDEOS
    assert summary["thumbnails"] == data.NUM_VIDEOS and summary["charts"] == 5
    assert page.count('src="data:image/png;base64,') == data.NUM_VIDEOS and "CC0-1.0" in page
    for sid in SECTIONS:
        assert f'id="{sid}"' in page, sid

    proc = headless(out, tmp_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert console_messages(proc.stderr, out) == []
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert 'data-ready="1"' in body, "the page's script did not run to the end"
    assert 'data-broken-images="0"' in body and f'data-thumbnails="{data.NUM_VIDEOS}"' in body
    assert 'data-charts="5"' in body
    for sid in SECTIONS:
        assert f'id="{sid}"' in dom, sid
    assert dom.count("<rect") > 30 and "left_wrist" in dom

    shot = tmp_path / "card.png"
    proc = headless(out, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    from thfm_synth.render.imagefiles import read_png

    img = read_png(shot)
    assert img.shape[1] == 1200 and img.std() > 10  # something was drawn


@pytest.mark.render
def test_card_of_a_shard_set_with_and_without_its_render_folder(tmp_path_factory, tmp_path):
    shards, _ = data.shard_set(tmp_path_factory)
    summary = write_report(shards, tmp_path / "card.html")
    assert summary["source"] == "shards" and summary["records_per_task"]["depth"] == 3
    assert summary["counts"]["records"] == 27 and summary["counts"]["videos"] == data.NUM_VIDEOS  # 9 tasks
    page = (tmp_path / "card.html").read_text()
    check_self_contained(page)
    assert 'id="records"' in page and "figures from the rendered videos" in page

    copy = tmp_path / "set"  # the render folder is gone: everything comes from the records
    shutil.copytree(shards, copy)
    index = json.loads((copy / "index.json").read_text())
    (copy / "index.json").write_text(json.dumps({**index, "render_dir": str(tmp_path / "gone")}))
    summary = write_report(copy, tmp_path / "card2.html")
    page = (tmp_path / "card2.html").read_text()
    assert summary["thumbnails"] == data.NUM_VIDEOS and summary["charts"] == 5 and "decoded latents" in page
    assert summary["counts"]["frames"] == 9 * data.NUM_VIDEOS
    proc = headless(tmp_path / "card2.html", tmp_path, "--dump-dom")
    assert proc.returncode == 0 and 'data-ready="1"' in proc.stdout
    assert console_messages(proc.stderr, tmp_path / "card2.html") == []


def test_histogram_svg_handles_constant_and_empty_data():
    assert 'data-n="3"' in svg_histogram([2.0, 2.0, 2.0], title="t", xlabel="x")
    assert "no data" in svg_histogram([np.nan], title="t", xlabel="x")
