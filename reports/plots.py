"""The paper's figures from the summary: Figure 2 (average score against trainable share, bubble
area = peak memory), Figure 4 (score against training-set size) and the efficiency bars.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so making a report never
touches a display or the caller's global matplotlib state.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reports import select
from reports.tables import method_order, task_order

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


def colours(methods: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(methods)}


def score_vs_params(summary: pd.DataFrame, baseline: str | None) -> Figure:
    """Figure 2: average test score against trainable % (log axis); bubble area ∝ peak memory."""
    cells = select.at_train_size(summary, select.main_train_size(summary))
    per_method = cells.groupby("method").agg(pct=("trainable_pct", "mean"), memory=("peak_memory_bytes", "max"))
    per_method = per_method.join(select.averages(cells))
    methods = method_order(per_method.index, baseline)
    colour = colours(methods)
    largest = per_method["memory"].max()
    fig, (ax,) = new_figure(6.4, 4.4)
    for m in methods:
        row = per_method.loc[m]
        size = MAX_BUBBLE * row["memory"] / largest if largest and pd.notna(row["memory"]) else 60
        ax.scatter(row["pct"], row["average"], s=size, color=colour[m], alpha=0.55, edgecolors="black", label=m)
        radius = math.sqrt(size / math.pi)  # points: the label sits just above the bubble
        ax.annotate(m, (row["pct"], row["average"]), textcoords="offset points", xytext=(0, radius + 3),
                    ha="center", va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (% of the model, log scale)")
    ax.set_ylabel(f"average test score over {cells['task'].nunique()} task(s)")
    ax.set_title(f"Score vs trainable parameters\n(bubble area ∝ peak memory; largest {largest / 1e6:,.0f} MB)")
    ax.margins(x=0.3, y=0.25)
    ax.grid(True, which="both", alpha=0.3)
    return fig


def low_resource(summary: pd.DataFrame, baseline: str | None) -> Figure | None:
    """Figure 4: test score (mean ± std over seeds) against training-set size, per task and method."""
    sized = summary[summary["train_size"].notna()]
    if sized.empty:
        return None
    tasks = task_order(sized["task"])
    methods = method_order(sized["method"], baseline)
    colour = colours(methods)
    ncols = min(len(tasks), PANELS_PER_ROW)
    fig, axes = new_figure(4.2 * ncols + 1.0, 3.8, ncols=ncols, panels=len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        for m in methods:
            rows = sized[(sized["task"] == task) & (sized["method"] == m)].sort_values("train_size")
            if rows.empty:
                continue
            ax.errorbar(rows["train_size"].astype(float), rows["test_score_mean"],
                        yerr=rows["test_score_std"].fillna(0), marker="o", capsize=3, color=colour[m], label=m)
        ax.set_xscale("log")
        ax.set_xlabel("training examples (log scale)")
        ax.set_ylabel("test score")
        ax.set_title(task)
        ax.grid(True, which="both", alpha=0.3)
    axes[-1].legend(loc="best", fontsize="small")
    return fig


def efficiency_bars(summary: pd.DataFrame, baseline: str | None) -> Figure | None:
    """Peak memory and time per epoch of each method, as % change relative to full fine-tuning."""
    if baseline is None:
        return None
    cells = select.at_train_size(summary, select.main_train_size(summary))
    eff = select.efficiency(cells, baseline).set_index("method")
    methods = [m for m in method_order(eff.index, baseline) if m != baseline]
    if not methods:
        return None
    colour = colours(method_order(eff.index, baseline))
    fig, axes = new_figure(9.0, 0.5 * len(methods) + 1.8, ncols=2)
    for ax, col, what in zip(axes, ("memory_delta_pct", "time_delta_pct"), ("peak memory", "time per epoch"),
                             strict=True):
        values = eff.loc[methods, col]
        ax.barh(methods, values.fillna(0), height=0.6, color=[colour[m] for m in methods])
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
            path = folder / f"{stem}.{ext}"
            fig.savefig(path, format=ext)
            paths.append(path)
    return paths

