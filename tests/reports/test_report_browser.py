"""The HTML report rendered by headless Chromium: its tables and figures are on the screenshot.

Skipped where no Chromium is installed (``scripts/install-chromium`` installs Debian's).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from matplotlib import image
from report_records import two_method_sweep, write_all

from reports.summary import report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")
TABLE_HEADER = (0xF4, 0xF6, 0xFA)  # the th background in render.STYLE
BAR = (0xFF, 0x7F, 0x0E)  # tab10's second colour: the adapter's efficiency bars


def pixels_near(rgb: np.ndarray, colour: tuple[int, int, int], tolerance: int = 3) -> int:
    return int((np.abs(rgb - np.array(colour)) <= tolerance).all(axis=-1).sum())


def screenshot(page, tmp_path, size=(1280, 2400)) -> np.ndarray:
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         f"--window-size={size[0]},{size[1]}", page.as_uri()],
        capture_output=True, timeout=180, check=True,
    )
    return np.rint(image.imread(shot)[..., :3] * 255).astype(int)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (scripts/install-chromium)")
def test_html_report_renders_tables_and_figures(tmp_path):
    folder = write_all(tmp_path / "sweep", two_method_sweep())
    report(folder, "html", out=tmp_path / "site")
    rgb = screenshot(tmp_path / "site" / "report.html", tmp_path)
    white = (rgb >= 250).all(axis=-1).mean()
    colours = len(np.unique(rgb.reshape(-1, 3), axis=0))
    assert white < 0.97, f"screenshot is {white:.1%} white"
    assert colours > 100, f"only {colours} distinct colours"
    assert pixels_near(rgb, TABLE_HEADER) > 2000, "no table header on the page"
    assert pixels_near(rgb, BAR) > 2000, "the efficiency bar chart is not on the page"
