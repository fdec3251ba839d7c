"""The paper's figures from the summary: Figure 2 (average score against trainable share, bubble
area = peak memory), Figure 4 (score against training-set size) and the efficiency bars.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so making a report never
touches a display or the caller's global matplotlib state.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from peftbench.files import write_bytes
from peftbench.reports import placement, select
from peftbench.reports.tables import display_names, method_order, task_order

MAX_BUBBLE = 2500  # points² of the largest memory bubble
DPI = 110
PANELS_PER_ROW = 4  # Figure 4 puts one panel per task, four to a row


def new_figure(width: float, height: float, *, ncols: int = 1, panels: int | None = None) -> tuple[Figure, list]:
    """A figure on the Agg canvas with ``panels`` axes in rows of ``ncols``; unused cells hidden."""
    panels = panels or ncols
    nrows = math.ceil(panels / ncols)
    fig = Figure(figsize=(width, height * nrows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def fitted_suptitle(fig: Figure, text: str, **style) -> None:
    """The figure's title, broken into lines at spaces where one line would be wider than the figure
    (a title wider than its canvas is clipped at both ends in the PNG)."""
    import textwrap

    title = fig.suptitle(text, **style)
    width = title.get_window_extent(fig.canvas.get_renderer()).width
    room = 0.94 * fig.bbox.width
    if width > room:
        title.set_text(textwrap.fill(text, max(20, int(len(text) * room / width))))


CROWDED = 8  # more methods than this: a larger Figure 2 with smaller bubbles and labels


def colours(methods: list[str]) -> dict[str, tuple]:
    """A distinct colour per method for up to 20 methods (then they repeat): tab20's ten dark shades,
    then its ten light ones, so neighbours in the order differ in hue and the two of a hue far apart."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    return {m: cmap(order[i % 20]) for i, m in enumerate(methods)}


def method_points(cells: pd.DataFrame) -> pd.DataFrame:
    """Per method of one setting: mean trainable %, largest peak memory, average score over tasks."""
    per_method = cells.groupby("method").agg(pct=("trainable_pct", "mean"), memory=("peak_memory_bytes", "max"))
    return per_method.join(select.averages(cells))


def score_vs_params(summary: pd.DataFrame, baseline: str | None) -> Figure:
    """Figure 2: average test score against trainable % (log axis), one panel per model and data;
    bubble area ∝ peak memory; the Pareto frontier dashed; every method labelled, no label overprinted."""
    cells = select.at_train_size(summary, select.main_train_size(summary))
    groups = select.settings(cells)
    methods = method_order(cells["method"], baseline)
    crowded = len(methods) > CROWDED
    style = {"colour": colours(methods), "name": display_names(summary),
             "max_bubble": MAX_BUBBLE / 2 if crowded else MAX_BUBBLE}
    largest = cells["peak_memory_bytes"].max()
    ncols = min(len(groups), 2)
    fig, axes = new_figure(8.4 if crowded else 6.4, 6.0 if crowded else 4.4, ncols=ncols, panels=len(groups))
    memory = f"largest {largest / 1e6:,.0f} MB" if pd.notna(largest) else "memory not recorded"
    fitted_suptitle(fig, f"Score vs trainable parameters (bubble area ∝ peak memory, {memory}; dashed: "
                         "Pareto frontier)", fontsize="medium")
    panels = [(ax, setting, draw_bubbles(ax, own, baseline, style, largest)) for ax, (setting, own) in
              zip(axes, groups, strict=True)]
    for ax, setting, _ in panels:
        if len(groups) > 1:
            ax.set_title(f"{setting[0]} on {setting[1]} data", fontsize="medium")
    for ax, _, points in panels:
        placement.place_labels(ax, points, fontsize=8.0 if crowded else 9.0)
    return fig


def draw_bubbles(ax, cells: pd.DataFrame, baseline, style: dict, largest) -> list[placement.Point]:
    """One setting's bubbles and Pareto frontier on ``ax``; returns the points to label."""
    per_method = method_points(cells)
    points = []
    for m in method_order(per_method.index, baseline):
        row = per_method.loc[m]
        size = style["max_bubble"] * row["memory"] / largest if largest and pd.notna(row["memory"]) else 60
        ax.scatter(row["pct"], row["average"], s=size, color=style["colour"][m], alpha=0.6, edgecolors="black",
                   linewidths=0.6, zorder=3)
        points.append(placement.Point(row["pct"], row["average"], math.sqrt(size / math.pi), style["name"][m]))
    front = per_method.loc[select.pareto_front(per_method, x="pct", y="average")]
    ax.plot(front["pct"], front["average"], drawstyle="steps-post", linestyle="--", color="0.3", linewidth=1.0,
            zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (% of the model, log scale)")
    ax.set_ylabel(f"average test score over {cells['task'].nunique()} task(s)")
    ax.margins(x=0.2, y=0.25)
    ax.grid(True, which="both", alpha=0.3)
    return points


def series_names(summary: pd.DataFrame) -> dict[tuple, str]:
    """(model, data, method) -> the name a legend or axis shows: the display name, with the setting
    where the summary holds several."""
    names = display_names(summary)
    several = len(select.settings(summary)) > 1
    return {(m, d, x): f"{names[x]} ({m}, {d})" if several else names[x]
            for m, d, x in summary[[*select.SETTING, "method"]].drop_duplicates().itertuples(index=False)}


def low_resource(summary: pd.DataFrame, baseline: str | None) -> Figure | None:
    """Figure 4: test score (mean ± std over seeds) against training-set size, per task; one line
    per method and setting."""
    sized = summary[summary["train_size"].notna()]
    if sized.empty:
        return None
    tasks = task_order(sized)
    names = series_names(sized)
    keys = sorted(names, key=lambda k: (k[:2], k[2] != baseline, k[2]))  # per setting, the baseline first
    colour = dict(zip(keys, colours(keys).values(), strict=True))
    ncols = min(len(tasks), PANELS_PER_ROW)
    fig, axes = new_figure(4.2 * ncols + 2.2, 3.8, ncols=ncols, panels=len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        for key in keys:
            rows = sized[(sized["task"] == task) & (sized[[*select.SETTING, "method"]].apply(tuple, axis=1) == key)]
            if rows.empty:
                continue
            ax.errorbar(rows["train_size"].astype(float), rows["test_score_mean"],
                        yerr=rows["test_score_std"].fillna(0), marker="o", capsize=3, color=colour[key],
                        label=names[key])
        ax.set_xscale("log")
        ax.set_xlabel("training examples (log scale)")
        ax.set_ylabel("test score")
        ax.set_title(task)
        ax.grid(True, which="both", alpha=0.3)
    handles = {h.get_label(): h for ax in axes for h in ax.get_legend_handles_labels()[0]}
    fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize="small")
    return fig


def efficiency_bars(summary: pd.DataFrame, baseline: str | None) -> Figure | None:
    """Peak memory and time per epoch of each method, as % change relative to full fine-tuning of
    the same model and data."""
    if baseline is None:
        return None
    cells = select.at_train_size(summary, select.main_train_size(summary))
    eff = select.efficiency_by_setting(cells, baseline)
    eff = eff[eff["method"] != baseline]
    if eff.empty:
        return None
    names = series_names(cells)
    labels = [names[key] for key in eff[[*select.SETTING, "method"]].itertuples(index=False, name=None)]
    colour = colours(method_order(cells["method"], baseline))
    fig, axes = new_figure(9.0, 0.5 * len(labels) + 1.8, ncols=2)
    for ax, col, what in zip(axes, ("memory_delta_pct", "time_delta_pct"), ("peak memory", "time per epoch"),
                             strict=True):
        values = eff[col].reset_index(drop=True)
        ax.barh(labels, values.fillna(0), height=0.6, color=[colour[m] for m in eff["method"]])
        for i, v in enumerate(values):
            ax.annotate("n/a" if pd.isna(v) else f"{v:+.1f}%", (0 if pd.isna(v) else v, i),
                        textcoords="offset points", xytext=(4 if pd.isna(v) or v >= 0 else -4, 0),
                        ha="left" if pd.isna(v) or v >= 0 else "right", va="center", fontsize="small")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel(f"{what}: % change vs {baseline}")
        ax.margins(x=0.25)
        ax.invert_yaxis()
        ax.grid(True, axis="x", alpha=0.3)
    return fig


# stem -> (drawing function, caption, key prefix of the tables the figure belongs with)
FIGURES = {
    "fig2_score_vs_params": (score_vs_params, "Figure 2: average score vs trainable parameters", "main"),
    "efficiency_vs_full": (efficiency_bars, "Memory and time per epoch relative to full fine-tuning", "efficiency"),
    "fig4_low_resource": (low_resource, "Figure 4: score vs training-set size", "low_resource"),
}


def make_figures(summary: pd.DataFrame, baseline: str | None) -> dict[str, tuple[Figure, str, str]]:
    """Every figure the summary supports, by file stem, with its caption and table anchor."""
    out = {}
    for stem, (draw, caption, anchor) in FIGURES.items():
        fig = draw(summary, baseline)
        if fig is not None:
            out[stem] = (fig, caption, anchor)
    return out


def save_figures(figures: dict[str, tuple[Figure, str, str]], folder: Path) -> list[Path]:
    """PNG and SVG of each figure in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, (fig, *_) in figures.items():
        for ext in ("png", "svg"):
            path, buffer = folder / f"{stem}.{ext}", io.BytesIO()
            fig.savefig(buffer, format=ext)
            paths.append(write_bytes(path, buffer.getvalue()))  # never through a link planted at the path
    return paths

