"""The HTML report rendered by headless Chromium: its tables and figures are on the screenshot, and
Figure 2 of sixteen methods shows at its own size, each label clear of the others.

Skipped where no Chromium is installed (``scripts/install-chromium`` installs Debian's).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from matplotlib import image

from peftbench.reports import placement, plots, select
from peftbench.reports.summary import report

from testkit.records import PAPER_METHODS, many_methods_sweep, two_method_sweep, write_all

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")
TABLE_HEADER = (0xF4, 0xF6, 0xFA)  # the th background in render.STYLE
BAR = (0xFF, 0x7F, 0x0E)  # tab10's second colour: the adapter's efficiency bars


def pixels_near(rgb: np.ndarray, colour: tuple[int, int, int], tolerance: int = 3) -> int:
    return int((np.abs(rgb - np.array(colour)) <= tolerance).all(axis=-1).sum())


def screenshot(page, tmp_path, size=(1280, 2400), shot=None) -> np.ndarray:
    shot = shot or tmp_path / "shot.png"
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


def locate(rgb: np.ndarray, block: np.ndarray) -> tuple[int, int] | None:
    """(row, column) where ``block`` appears unscaled in ``rgb``, found by one of its busiest rows."""
    busiest = int(np.argmax([len(np.unique(r, axis=0)) for r in block]))
    needle = block[busiest].astype(np.uint8).tobytes()
    for y in range(rgb.shape[0]):
        at = rgb[y].astype(np.uint8).tobytes().find(needle)
        while at >= 0 and at % 3:
            at = rgb[y].astype(np.uint8).tobytes().find(needle, at + 1)
        if at >= 0:
            top, left = y - busiest, at // 3
            window = rgb[top:top + block.shape[0], left:left + block.shape[1]]
            if window.shape == block.shape and np.abs(window - block).mean() < 1.0:
                return top, left
    return None


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (scripts/install-chromium)")
def test_figure_2_of_sixteen_methods_is_shown_unscaled_with_every_label_clear(tmp_path):
    records = many_methods_sweep(16)
    folder = write_all(tmp_path / "sweep", records)
    report(folder, "html", out=tmp_path / "site")
    summary = select.summarize(records)
    fig = plots.score_vs_params(summary, "full")
    fig.canvas.draw()
    labels = fig.axes[0].texts
    assert sorted(t.get_text() for t in labels) == sorted(PAPER_METHODS)
    assert placement.overlapping_texts(labels, fig.canvas.get_renderer()) == []
    shot_path = tmp_path / "report-16-methods.png"  # kept as the test's artifact, to look at
    rgb = screenshot(tmp_path / "site" / "report.html", tmp_path, size=(1280, 2400), shot=shot_path)
    assert shot_path.stat().st_size > 50_000
    drawn = np.rint(image.imread(tmp_path / "site" / "fig2_score_vs_params.png")[..., :3] * 255).astype(int)
    at = locate(rgb, drawn)
    assert at is not None, f"Figure 2 is not on the page at its own size (screenshot: {shot_path})"
    print(f"screenshot: {shot_path}; Figure 2 at {at}")
