"""The HTML report rendered by headless Chromium: its tables and figures are on the screenshot, and
Figure 2 of sixteen methods shows at its own size, each label clear of the others.

Skipped where no Chromium is installed (``scripts/install-chromium`` installs Debian's).
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess

import numpy as np
import pytest
from matplotlib import image

from peftbench.reports import placement, plots, select
from peftbench.reports.summary import report

from testkit.records import PAPER_METHODS, many_methods_sweep, seeds, two_method_sweep, write_all

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


GLUE = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")
MIXTURE_METHODS = [("adapter", {"sharing": "per-task"}), ("adapter", {"sharing": "shared"}),
                   ("compacter", {"sharing": "per-task", "phm_dim": 4}), ("hyperformer", {"sharing": "hyper"}),
                   ("lora", {"sharing": "shared"}), ("full", {})]
MEASURE = ("<script>const o = {page: document.documentElement.scrollWidth, view: innerWidth, tables: "
           "[...document.querySelectorAll('section')].map(s => [s.id, s.querySelector('table').scrollWidth, "
           "s.querySelector('.scroll').clientWidth])}; document.body.innerHTML = "
           "'<pre id=\"measured\">' + JSON.stringify(o) + '</pre>';</script></body>")


def mixture_page(tmp_path, *, single: bool):
    """The HTML report of a sweep of six methods on a mixture of the eight GLUE tasks (and, with
    ``single``, full and adapter on each task alone): the mixture tables at their widest."""
    from test_report_multitask import mixture_record

    records = [mixture_record(method, 1e-3, s, val=60 + i, tests={t: 55.25 + i + k + s for k, t in enumerate(GLUE)},
                              options=options) for i, (method, options) in enumerate(MIXTURE_METHODS) for s in (0, 1)]
    records[0]["test_metrics"]["cola"]["invalid"] = 5
    for task in GLUE if single else ():
        records += seeds("adapter", task, 1e-3, [50, 50], [60, 61], data_source="fixtures")
        records += seeds("full", task, 1e-3, [50, 50], [62, 63], data_source="fixtures")
    report(write_all(tmp_path / "sweep", records), "html", out=tmp_path / "site")
    return tmp_path / "site" / "report.html"


def measured(page, tmp_path, width: int) -> dict:
    """Widths in the page laid out by Chromium at ``width`` px: the page's, and each table's against its box."""
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", MEASURE))
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},900",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=180, check=True).stdout
    return json.loads(html.unescape(dom.split('<pre id="measured">', 1)[1].split("</pre>", 1)[0]))


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (scripts/install-chromium)")
def test_the_mixture_page_fits_1400_px_and_narrower_tables_scroll_in_their_own_box(tmp_path):
    page = mixture_page(tmp_path, single=True)
    wide = measured(page, tmp_path, 1400)
    keys = [key for key, _, _ in wide["tables"]]
    assert {"multitask_pair", "multitask_pair_vs_single", "hyperparameters"} <= set(keys)
    assert wide["page"] <= wide["view"]  # no scrollbar for the page
    assert [key for key, table, box in wide["tables"] if table > box] == []  # every table fits its box
    narrow = measured(page, tmp_path, 800)
    assert narrow["page"] <= narrow["view"]  # the page still does not scroll sideways...
    assert "multitask_pair" in [key for key, table, box in narrow["tables"] if table > box]  # ...its tables do


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (scripts/install-chromium)")
def test_the_mixture_pages_first_table_is_whole_on_the_screenshot(tmp_path):
    page = mixture_page(tmp_path, single=False)
    shot_path = tmp_path / "mixture-1400.png"  # kept as the test's artifact, to look at
    rgb = screenshot(page, tmp_path, size=(1400, 1000), shot=shot_path)
    header = (np.abs(rgb - np.array(TABLE_HEADER)) <= 3).all(axis=-1)
    rows = np.flatnonzero(header.sum(axis=1) > 500)  # header bands (not a text's anti-aliased edge)
    assert len(rows) > 20, f"no table header on the page (screenshot: {shot_path})"
    first = header[rows[0]:rows[0] + 20]  # the first table's header band: both ends on the page
    columns = np.flatnonzero(first.any(axis=0))
    assert columns[0] > 0 and columns[-1] < rgb.shape[1] - 1
    assert columns[-1] - columns[0] > 1200, "the mixture table is narrower than its 14 columns need"
    print(f"screenshot: {shot_path}")
