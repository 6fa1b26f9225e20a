"""Eval results for people: a rich table per set and a PNG like the paper's figures.

The PNG is drawn on matplotlib's Agg canvas directly (no pyplot), so plotting
needs no display and never changes the backend of the caller's process;
matplotlib is imported only here, when a plot is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

from prefroute.evals.evaluate import EvalResults, SetResult
from prefroute.evals.metrics import BOOTSTRAP_RESAMPLES, RANDOM_ROUTERS, Curve, Interval
from prefroute.evals.n_models import ModelSet, ModelsResult, Summary

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = [
    "models_table",
    "render",
    "render_models",
    "singles_table",
    "table",
    "write_models_plot",
    "write_plot",
]

HEADERS = ("router", "APGR", "95% CI", "CPT(50%)", "CPT(80%)", "AUC", "saving")


def _row(label: str, c: Curve, spread: Interval | None, result: SetResult) -> list[str]:
    cpt50 = c.cpt(0.5)
    saving = result.saving(cpt50)
    return [
        label,
        f"{c.apgr:.3f}",
        str(spread) if spread is not None else "",
        f"{cpt50:.1%}",
        f"{c.cpt(0.8):.1%}",
        f"{c.auc:.3f}",
        f"{saving:.2f}x" if saving is not None else "-",
    ]


def table(result: SetResult) -> Table:
    """One set's table: each router, then the random line and the oracle.

    A router's "95% CI" is its APGR's bootstrap interval; the random line's is the
    band 5-95% of random routers reach on the same prompts (the line itself is
    their mean, APGR 0.5).
    """
    from rich.table import Table

    s = result.eval_set
    out = Table(
        title=f"{s.name}: {len(s):,} prompts, {s.strong_model} vs {s.weak_model}",
        title_justify="left",
    )
    for header in HEADERS:
        out.add_column(header, justify="left" if header == "router" else "right")
    for r in result.routers:
        out.add_row(*_row(r.label + (" *" if r.note else ""), r.curve, r.apgr_interval, result))
    out.add_row(*_row("random line", result.random, result.random_band, result), style="dim")
    out.add_row(*_row("oracle", result.oracle, None, result), style="dim")
    return out


def describe_set(result: SetResult) -> list[str]:
    """The lines under a set's table: the pair and its qualities, how many prompts (and,
    for a file, rows) were used and left out, the random band, the prices, warnings."""
    s = result.eval_set
    lines = [
        f"quality ({s.quality}): strong {s.strong_model} {s.strong_quality.mean():.3f}, "
        f"weak {s.weak_model} {s.weak_quality.mean():.3f}"
    ]
    if s.source is not None and s.source.pair_choice:
        lines.append(f"pair: {s.source.pair_choice}")
    left_out = sum(s.dropped.values())
    dropped = ", ".join(f"{n:,} {why}" for why, n in s.dropped.items())
    prompts = f"{len(s) + left_out:,} prompts in it, {len(s):,} used" + (
        f", {left_out:,} left out ({dropped})" if left_out else ""
    )
    if s.source is None:
        lines.append(f"prompts: {prompts}")
    else:
        f = s.source
        rows = ", ".join(
            [f"{f.rows:,} rows ({f.format}): {f.used:,} used"]
            + [f"{n:,} {why}" for why, n in f.ignored.items()]
        )
        lines.append(f"file: {f.file}: {rows}; {prompts}")
    if result.random_band is not None:
        lines.append(
            f"random band: 5-95% of {RANDOM_ROUTERS:,} random routers' APGR on these prompts "
            f"is {result.random_band}"
        )
    if result.prices is not None:
        lines.append("prices: " + "; ".join(result.prices.lines(s.strong_model, s.weak_model)))
    elif result.missing_price is not None:
        lines.append(f"saving not priced: {result.missing_price}")
    lines += [f"* {r.label}: {r.note}" for r in result.routers if r.note]
    return lines


def render(results: EvalResults, console: Console) -> None:
    """Print every set's table, the lines that describe it, and its warnings; a prices
    line the set before already printed is not repeated."""
    said: set[str] = set()
    for result in results.sets:
        console.print(table(result))
        for line in describe_set(result):
            if line.startswith("prices: ") and line in said:
                continue
            said.add(line)
            console.print(f"  {line}", highlight=False, markup=False)
        for warning in result.warnings:
            console.print(Text.assemble(("  warning: ", "bold yellow"), warning))
    console.print(
        "saving: times cheaper than always calling the strong model, at CPT(50%), at the "
        f"prices shown above; 95% CI: APGR over {BOOTSTRAP_RESAMPLES:,} bootstrap resamples of "
        "the prompts (seed 0)",
        highlight=False,
    )


def write_plot(results: EvalResults, path: str | Path) -> Path:
    """Quality against % strong calls, one panel per set, as in the paper's figures.

    One line per router, the random router dashed, the oracle dotted.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(results.sets)
    figure = Figure(figsize=(5.0 * n, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, n, squeeze=False)[0]
    for ax, result in zip(axes, results.sets, strict=True):
        s = result.eval_set
        for r in result.routers:
            ax.plot(100 * r.curve.share, r.curve.quality, label=f"{r.label} ({r.curve.apgr:.3f})")
        for label, c, style in (
            ("random", result.random, "--"),
            ("oracle", result.oracle, ":"),
        ):
            ax.plot(100 * c.share, c.quality, style, color="grey", label=f"{label} ({c.apgr:.3f})")
        ax.set_title(f"{s.name} (n={len(s):,})\n{s.strong_model} vs {s.weak_model}", fontsize=10)
        ax.set_xlabel(f"% calls to {s.strong_model}")
        ax.set_ylabel(s.quality)
        ax.set_xlim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(title="router (APGR)", fontsize=8, title_fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


# ------------------------------------------------------------ among N models


def _dollars(per_call: float | None) -> str:
    """$ per call as $ per 1,000 requests, the unit every N-model table uses."""
    return "never" if per_call is None else f"${1000 * per_call:.4g}"


def _summary_cells(summary: Summary | None, s: ModelSet) -> list[str]:
    if summary is None:
        return ["-", "-", "-"]
    match = summary.cost_to_match_best
    best_cost = float(s.mean_cost[s.best])
    at = "never" if match is None else f"{_dollars(match)} ({match / best_cost:.0%})"
    return [f"{summary.aiq:.4f}", f"{summary.quality_at_best_cost:.4f}", at]


def models_table(result: ModelsResult) -> Table:
    """One N-model set's table: each router's N-model and two-model numbers, then the
    oracle and the singles hull (what mixing single models at random buys)."""
    from rich.table import Table

    s = result.eval_set
    out = Table(title=f"{s.name}: {len(s):,} prompts, {len(s.models)} models", title_justify="left")
    headers = (
        "router", "AIQ", "quality at best's $", "$ to match best",
        "2-model AIQ", "2-model quality at best's $", "2-model $ to match best",
    )  # fmt: skip
    for header in headers:
        out.add_column(header, justify="left" if header == "router" else "right")
    for r in result.routers:
        out.add_row(r.label, *_summary_cells(r.summary, s), *_summary_cells(r.two_model_summary, s))
    out.add_row("oracle", *_summary_cells(result.oracle_summary, s), "", "", "", style="dim")
    out.add_row("singles hull", *_summary_cells(result.singles_summary, s), "", "", "", style="dim")
    return out


def singles_table(s: ModelSet) -> Table:
    """Each candidate alone: mean quality and $ per 1,000 requests, dearest first."""
    from rich.table import Table

    out = Table(title=f"{s.name}: single models", title_justify="left")
    for header in ("model", "quality", "$ per 1k requests"):
        out.add_column(header, justify="left" if header == "model" else "right")
    order = sorted(range(len(s.models)), key=lambda i: -s.mean_cost[i])
    for i in order:
        tags = [t for t, j in (("best", s.best), ("cheapest", s.cheapest)) if j == i]
        label = s.models[i] + (f" ({', '.join(tags)})" if tags else "")
        out.add_row(label, f"{s.mean_quality[i]:.4f}", _dollars(float(s.mean_cost[i])))
    return out


def render_models(result: ModelsResult, console: Console) -> None:
    """Print the single models, the routers' table, and what the numbers mean."""
    s = result.eval_set
    console.print(singles_table(s))
    console.print(models_table(result))
    low, high = s.cost_range
    dropped = ", ".join(f"{n:,} {why}" for why, n in s.dropped.items()) or "none"
    best = s.best
    console.print(
        f"  best: {s.models[best]} (quality {s.mean_quality[best]:.4f}, "
        f"{_dollars(float(s.mean_cost[best]))} per 1k requests); $ are per 1k requests, "
        "with their share of the best model's\n"
        f"  AIQ: mean quality of the hull over {_dollars(low)} to {_dollars(high)} per 1k "
        "requests (RouterBench); singles hull: what mixing single models at random buys; "
        f"2-model: the router between {s.models[best]} and {s.models[s.cheapest]} only\n"
        f"  costs: {s.cost_source}\n  dropped: {dropped}",
        highlight=False,
        soft_wrap=True,
    )


def write_models_plot(results: Sequence[ModelsResult], path: str | Path) -> Path:
    """Quality against $ per 1,000 requests (log scale), one panel per set: each router's
    hull, the oracle's, the single models and their hull."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter

    n = len(results)
    figure = Figure(figsize=(6.0 * n, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, n, squeeze=False)[0]
    for ax, result in zip(axes, results, strict=True):
        s = result.eval_set
        low, high = s.cost_range
        for r in result.routers:
            h = r.curve.hull
            ax.plot(1000 * h.cost, h.quality, label=f"{r.label} ({r.summary.aiq:.3f})")
        o = result.oracle.hull
        ax.plot(1000 * o.cost, o.quality, ":", color="grey",
                label=f"oracle ({result.oracle_summary.aiq:.3f})")  # fmt: skip
        ax.plot(1000 * result.singles.cost, result.singles.quality, "--", color="black",
                label=f"singles hull ({result.singles_summary.aiq:.3f})")  # fmt: skip
        ax.scatter(1000 * s.mean_cost, s.mean_quality, color="black", s=14, zorder=3)
        for model, c, q in zip(s.models, s.mean_cost, s.mean_quality, strict=True):
            ax.annotate(model, (1000 * c, q), fontsize=6, xytext=(3, -8),
                        textcoords="offset points")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlim(1000 * low / 1.5, 1000 * high * 1.5)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{s.name} (n={len(s):,}, {len(s.models)} models)", fontsize=10)
        ax.set_xlabel("$ per 1,000 requests (log scale)")
        ax.set_ylabel("mean quality")
        ax.grid(alpha=0.3)
        ax.legend(title="router (AIQ)", fontsize=7, title_fontsize=8, loc="best")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path
