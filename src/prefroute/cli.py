"""The ``prefroute`` command line: parse, call one library function, print.

Every command turns a ``PrefrouteError`` into one line on stderr and exit
code 1: users see what is wrong with their input, never a traceback.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from prefroute.errors import PrefrouteError

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    help="Learn LLM routers from preference data and serve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect training data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
errors = Console(stderr=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (default: $PREFROUTE_DATA_DIR, else ../shared/data).",
        file_okay=False,
    ),
]
BattleFilesOption = Annotated[
    list[Path] | None,
    typer.Option("--battles", help="Extra battle files (JSONL/CSV/Parquet, .gz ok).", exists=True),
]
SkipBadOption = Annotated[
    bool, typer.Option("--skip-bad", help="Drop bad records (reported) instead of failing.")
]


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a PrefrouteError into one clear line and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except PrefrouteError as exc:
            errors.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            raise typer.Exit(code=1) from None

    return wrapper


@data_app.command("stats")
@reports_errors
def data_stats(
    data_dir: DataDirOption = None,
    battles: BattleFilesOption = None,
    skip_bad: SkipBadOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Battles per data set and source, model ratings and tiers, decontamination counts."""
    from prefroute.data.stats import render, summarize

    summary = summarize(data_dir, battle_files=battles or (), skip_bad=skip_bad)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        render(summary, console)


@app.command()
@reports_errors
def quickstart(data_dir: DataDirOption = None) -> None:
    """The main job on the shipped data: read every set and summarise it."""
    from prefroute.data.stats import render, summarize

    render(summarize(data_dir), console)
