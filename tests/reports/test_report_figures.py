"""Scores that explain themselves and figures that stay legible with many methods: the share of
invalid outputs, display names, the best of each column in bold, Figure 2 for sixteen methods."""

from __future__ import annotations

import pytest
from matplotlib.collections import PathCollection
from matplotlib.text import Text

from peftbench.reports import placement, plots, render, select, tables
from peftbench.reports.summary import report

from testkit.records import many_methods_sweep, record, seeds, two_method_sweep, write_all


def test_invalid_share_shown_where_not_zero():
    records = [*seeds("full", "rte", 1e-3, [1, 2], [0, 0], metrics={"accuracy": 0.0, "invalid": 40, "examples": 40}),
               *seeds("adapter", "rte", 1e-3, [1, 2], [50, 50], metrics={"accuracy": 50.0, "invalid": 0,
                                                                         "examples": 40}),
               *seeds("bitfit", "rte", 1e-3, [1, 2], [60, 60], metrics={"accuracy": 60.0, "invalid": 1,
                                                                        "examples": 40}),
               *seeds("said", "rte", 1e-3, [1, 2], [70, 70], metrics={"accuracy": 70.0, "invalid": 6})]
    rows = {r[0]: r[1] for r in tables.main_table(select.summarize(records), "full").rows}
    assert rows["full"] == "0.00 ± 0.00 (100% invalid)"  # a 0.00 that says why
    assert rows["adapter"] == "50.00 ± 0.00"  # nothing invalid: nothing said
    assert rows["bitfit"] == "60.00 ± 0.00 (2.5% invalid)"  # 1 + 1 of 40 + 40 outputs
    assert rows["said"] == "70.00 ± 0.00 (12 invalid)"  # older records: no count of outputs scored


def test_examples_and_invalid_are_not_metrics():
    good = record("adapter", "rte", 1e-3, 0, val=1, test=75.0,
                  metrics={"accuracy": 80.0, "f1": 70.0, "invalid": 3, "examples": 277})
    assert select.score_mismatches([good]) == []


def test_display_names_replace_labels_unless_they_collide():
    records = [*seeds("compacter", "rte", 1e-3, [1, 2], [1, 2], options={"phm_dim": 4}, display_name="Compacter"),
               *seeds("adapter", "rte", 1e-3, [1, 2], [1, 2], display_name="Adapter"),
               *seeds("adapter", "rte", 1e-3, [1, 2], [1, 2], options={"reduction": 8}, display_name="Adapter")]
    names = tables.display_names(select.summarize(records))
    assert names == {"compacter[phm_dim=4]": "Compacter", "adapter": "adapter", "adapter[reduction=8]":
                     "adapter[reduction=8]"}


def test_best_of_each_column_in_bold_in_every_format(tmp_path):
    records = [*seeds("full", "rte", 1e-3, [1, 2], [60, 62], memory_mb=1000, time_s=10, pct=100.0),
               *seeds("adapter", "rte", 1e-3, [1, 2], [70, 72], memory_mb=900, time_s=12, pct=0.5),
               *seeds("bitfit", "rte", 1e-3, [1, 2], [50, 52], memory_mb=950, time_s=8, pct=0.1)]
    table = tables.main_table(select.summarize(records), "full")
    # columns: method, rte, average, trainable %, memory, time; rows: full, adapter, bitfit
    assert table.best == {(1, 1), (1, 2), (2, 3), (1, 4), (2, 5)}
    tied = tables.main_table(select.summarize(seeds("full", "rte", 1e-3, [1, 2], [5, 5])
                                              + seeds("adapter", "rte", 1e-3, [1, 2], [5, 5])), "full")
    assert not any(j in (1, 2) for _, j in tied.best)  # all tied: no score is the best
    # the significance mark stays inside the bold
    assert "| adapter | **71.00 ± 1.41\\*** | **71.00** | 0.500 | **900** | 12.00 |" in render.markdown([table], [])
    assert r"\textbf{71.00 $\pm$ 1.41$^{*}$}" in render.latex([table], [])
    page = render.html_page([table], [], figures={}, title="t")
    # a narrow window may wrap a score before its "± std", never inside a number
    assert "<td><strong>71.00 ±\u00a01.41*</strong></td>" in page and "<td>61.00 ±\u00a01.41</td>" in page


def test_pareto_front():
    import pandas as pd

    points = pd.DataFrame({"pct": [100.0, 0.1, 0.1, 1.0, 0.01, 5.0], "average": [87, 85, 80, 86, 70, 86]},
                          index=list("abcdef"))
    # c is beaten by b (same share, higher score); f by d (lower share, same score)
    assert select.pareto_front(points, x="pct", y="average") == ["e", "b", "d", "a"]


def test_sixteen_colours_are_distinct():
    methods = [f"m{i}" for i in range(16)]
    assert len(set(plots.colours(methods).values())) == 16


def drawn_texts(fig) -> list[Text]:
    """The texts a draw of ``fig`` actually puts on the canvas (not ticks outside the axis limits)."""
    drawn, draw = [], Text.draw

    def spy(self, renderer):
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)
        return draw(self, renderer)

    Text.draw = spy
    try:
        fig.canvas.draw()
    finally:
        Text.draw = draw
    return drawn


@pytest.fixture(scope="module")
def figure_2():
    summary = select.summarize(many_methods_sweep(16))
    fig = plots.score_vs_params(summary, "full")
    return summary, fig, drawn_texts(fig)


def test_figure_2_labels_every_method_without_overprinting_or_clipping(figure_2):
    summary, fig, texts = figure_2
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.texts]
    assert sorted(labels) == sorted(set(summary["method"])) and len(labels) == 16
    assert set(ax.texts) <= set(texts) and len(texts) > 16 + 10  # labels, ticks, axis labels, title
    renderer = fig.canvas.get_renderer()
    assert placement.overlapping_texts(texts, renderer) == []
    whole = fig.bbox
    for text in texts:
        box = placement.text_box(text, renderer)
        assert whole.x0 <= box.x0 and box.x1 <= whole.x1 and whole.y0 <= box.y0 and box.y1 <= whole.y1, text
    inner = ax.get_window_extent(renderer)
    for note in ax.texts:  # the method labels stay inside the plot, over nothing they would hide
        box = placement.text_box(note, renderer)
        assert inner.x0 <= box.x0 and box.x1 <= inner.x1 and inner.y0 <= box.y0 and box.y1 <= inner.y1


def test_figure_2_draws_each_method_in_its_own_colour_and_the_frontier(figure_2):
    summary, fig, _ = figure_2
    (ax,) = fig.axes
    faces = [tuple(c.get_facecolor()[0][:3]) for c in ax.collections if isinstance(c, PathCollection)]
    assert len(faces) == 16 and len(set(faces)) == 16
    points = plots.method_points(summary)
    front = points.loc[select.pareto_front(points, x="pct", y="average")]
    (line,) = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert list(line.get_xdata()) == list(front["pct"]) and list(line.get_ydata()) == list(front["average"])
    assert "full" not in front.index and "intrinsic-said" in front.index  # full is dominated; SAID the smallest


def test_figure_2_uses_display_names(tmp_path):
    records = [*seeds("full", "rte", 1e-3, [1, 2], [60, 62], pct=100.0, display_name="Full fine-tuning"),
               *seeds("compacter", "rte", 1e-3, [1, 2], [70, 72], pct=0.07, display_name="Compacter (n=4)")]
    fig = plots.score_vs_params(select.summarize(records), "full")
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["Compacter (n=4)", "Full fine-tuning"]
    text = report(write_all(tmp_path / "s", records))
    assert "| Compacter (n=4) |" in text


@pytest.mark.parametrize("memory_mb", [1000.0, 123_456_789.0])
def test_figure_2s_title_fits_the_figure_of_a_few_methods(memory_mb):
    """Two methods draw the narrow Figure 2, whose one-line title was wider than the canvas."""
    records = [{**r, "peak_memory_bytes": memory_mb * 1e6} for r in two_method_sweep()]
    fig = plots.score_vs_params(select.summarize(records), "full")
    fig.canvas.draw()
    renderer, title = fig.canvas.get_renderer(), fig._suptitle
    box = title.get_window_extent(renderer)
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1
    assert "Pareto frontier" in title.get_text().replace("\n", " ")
    assert "\n" in title.get_text()  # this width needs two lines
    for ax in fig.axes:  # the title's lines above the plot, not over it
        assert box.y0 >= ax.get_window_extent(renderer).y1
