"""Eval results for people: a rich table per set and a PNG like the paper's figures.

The PNG is drawn on matplotlib's Agg canvas directly (no pyplot), so plotting
needs no display and never changes the backend of the caller's process;
matplotlib is imported only here, when a plot is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from prefroute.evals.evaluate import EvalResults, SetResult
from prefroute.evals.metrics import Curve, cost_saving

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["render", "table", "write_plot"]

_QUALITY = {"mt-bench": "MT-Bench score (1-10)", "mmlu": "accuracy", "gsm8k": "accuracy"}


def _row(label: str, c: Curve, n: int, results: EvalResults) -> list[str]:
    cpt50 = c.cpt(0.5)
    return [
        label,
        f"{c.apgr:.3f}",
        f"{cpt50:.1%}",
        f"{c.cpt(0.8):.1%}",
        f"{c.auc:.3f}",
        f"{n:,}",
        f"{cost_saving(cpt50, results.prices):.2f}x",
    ]


def table(result: SetResult, results: EvalResults) -> Table:
    """One set's table: each router, then the random and oracle references."""
    from rich.table import Table

    s = result.eval_set
    out = Table(title=f"{s.name}: {len(s):,} prompts", title_justify="left")
    for header in ("router", "APGR", "CPT(50%)", "CPT(80%)", "AUC", "n prompts", "saving"):
        out.add_column(header, justify="left" if header == "router" else "right")
    for r in result.routers:
        out.add_row(*_row(r.label + (" *" if r.note else ""), r.curve, len(s), results))
    out.add_row(*_row("random", result.random, len(s), results), style="dim")
    out.add_row(*_row("oracle", result.oracle, len(s), results), style="dim")
    return out


def render(results: EvalResults, console: Console) -> None:
    """Print every set's table with its pair, qualities and drops, then how any router
    was matched to the pair (*) and what "saving" means."""
    for result in results.sets:
        s = result.eval_set
        console.print(table(result, results))
        dropped = ", ".join(f"{n:,} {why}" for why, n in s.dropped.items()) or "none"
        console.print(
            f"  quality: strong {s.strong_model} {s.strong_quality.mean():.3f}, weak "
            f"{s.weak_model} {s.weak_quality.mean():.3f}\n  dropped: {dropped}",
            highlight=False,
        )
        for r in result.routers:
            if r.note:
                console.print(f"  * {r.label}: {r.note}", highlight=False)
    console.print(
        "saving: times cheaper than always calling the strong model, at CPT(50%), with "
        f"${results.prices.strong:g} (strong) and ${results.prices.weak:g} (weak) per 1M tokens",
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
        ax.set_ylabel(_QUALITY.get(s.name, "mean quality"))
        ax.set_xlim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(title="router (APGR)", fontsize=8, title_fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path
