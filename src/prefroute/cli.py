"""The ``prefroute`` command line: parse, call one library function, print.

The root group turns every error a command raises into one line on stderr
and exit code 1: users see what is wrong with their input, never a traceback.
``--debug`` (or ``PREFROUTE_DEBUG=1``) lets the traceback through for a bug
report. Typer's own usage errors (a missing argument, a path that does not
exist) keep their message and exit code 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from prefroute.errors import PrefrouteError
from prefroute.routers.registry import KINDS

if TYPE_CHECKING:
    import numpy as np
    from typer._click import Context  # typer's vendored click: what TyperGroup's methods take

    from prefroute.prices import PriceTable
    from prefroute.routers.base import Router

MULTI_VALUE_OPTIONS = ("--battles", "--scores", "--prices")
"""Options that take several values after one flag (``--battles a.jsonl b.jsonl``)."""
DEBUG_ENV = "PREFROUTE_DEBUG"
UNREACHABLE_GAP = 0.01
"""A calibrated share further than this from the one asked (one step of the stored
whole-percent table) is reported as unreachable: ties in the scores straddle it."""
ROUTE_BATCH = 256
"""Prompts scored per call by ``route``: small enough for a live progress bar, large
enough that batching pays (the batch size ``benchmarks/routing.py`` measures)."""


def spread_multi_value_options(args: Sequence[str]) -> list[str]:
    """``--battles a b`` -> ``--battles a --battles b``: click gives an option one value.

    Every token after a ``MULTI_VALUE_OPTIONS`` flag's first value that does not
    start with ``-`` is another value of it, up to the next option (or ``--``);
    so positional arguments go before such a flag.
    """
    out: list[str] = []
    flag: str | None = None  # the multi-value flag whose values are being read
    awaiting = False  # its first value comes next, whatever it looks like
    for i, arg in enumerate(args):
        if awaiting:
            out.append(arg)
            awaiting = False
        elif arg == "--":
            return out + list(args[i:])
        elif arg.startswith("-"):
            name, has_value, _ = arg.partition("=")
            flag = name if name in MULTI_VALUE_OPTIONS else None
            awaiting = flag is not None and not has_value
            out.append(arg)
        elif flag is not None:
            out += [flag, arg]
        else:
            out.append(arg)
    return out


class PrefrouteGroup(TyperGroup):
    """The root command: one error line instead of a traceback, and
    ``MULTI_VALUE_OPTIONS`` with several values per flag."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_multi_value_options(args))

    def invoke(self, ctx: Context) -> Any:
        """Run the command; any error becomes one line on stderr and exit code 1.

        Typer's own exceptions pass through: usage errors keep their message and
        exit code 2, ``typer.Exit`` its code. ``--debug`` re-raises.
        """
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            errors.print(Text.assemble(("error:", "bold red"), " ", describe_error(exc)))
            raise typer.Exit(code=1) from None


app = typer.Typer(
    cls=PrefrouteGroup,
    help="Learn LLM routers from preference data and serve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect training data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
errors = Console(stderr=True, soft_wrap=True)


def _print_version(value: bool) -> None:
    if value:
        from prefroute import __version__

        typer.echo(f"prefroute {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar=DEBUG_ENV,
            help=f"Show the full traceback of an error (or set {DEBUG_ENV}=1).",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Learn LLM routers from preference data and serve them."""


def describe_error(exc: Exception) -> str:
    """One line for an error: prefroute's own say what to fix; the rest get a hint."""
    if isinstance(exc, PrefrouteError):
        return str(exc)
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, ImportError):
        if "pip install" in message:
            return message
        return (
            f"{message}: a package this command needs is missing; install the extra "
            "it belongs to: pip install 'prefroute[train]' (training) or "
            "'prefroute[serve]' (serving)"
        )
    if isinstance(exc, OSError):  # a path that cannot be written, a full disk, ...
        return message
    return (
        f"unexpected {type(exc).__name__}: {message} (rerun with --debug or "
        f"{DEBUG_ENV}=1 for the traceback, and report it)"
    )


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
    typer.Option(
        "--battles",
        help="Extra battle files (JSONL/CSV/Parquet, .gz ok); several after one flag: "
        "--battles a.jsonl b.csv.",
        exists=True,
        dir_okay=False,
    ),
]
SkipBadOption = Annotated[
    bool, typer.Option("--skip-bad", help="Drop bad records (reported) instead of failing.")
]
PricesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--prices",
        help="TOML price file(s), $ per 1M input/output tokens, over the shipped table; "
        "several after one flag.",
        exists=True,
        dir_okay=False,
    ),
]


@data_app.command("stats")
def data_stats(
    data_dir: DataDirOption = None,
    battles: BattleFilesOption = None,
    skip_bad: SkipBadOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Print every model's rating, not only the top ones.")
    ] = False,
) -> None:
    """Battles per data set and source, model ratings and tiers, decontamination counts."""
    from prefroute.data.stats import TOP_MODELS, render, summarize

    with errors.status("collecting the training data") as status:
        summary = summarize(
            data_dir, battle_files=battles or (), skip_bad=skip_bad, on_phase=status.update
        )
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        render(summary, console, top=None if show_all else TOP_MODELS)


ArtifactArg = Annotated[
    Path, typer.Argument(help="Router artifact directory.", exists=True, file_okay=False)
]
PromptsOption = Annotated[
    Path | None,
    typer.Option(
        "--prompts",
        help="Prompts to calibrate on (.txt lines, JSONL/CSV/Parquet with 'prompt'); "
        "default: the shipped real Arena prompts.",
        exists=True,
        dir_okay=False,
    ),
]


@app.command()
def train(
    kind: Annotated[str, typer.Argument(help=f"Router kind: {', '.join(KINDS)}.")],
    out: Annotated[
        Path, typer.Option("--out", help="Artifact directory to write.", file_okay=False)
    ],
    data_dir: DataDirOption = None,
    battles: BattleFilesOption = None,
    scores: Annotated[
        list[Path] | None,
        typer.Option(
            "--scores",
            help="Your per-model scores (prompt, model, score|correct), turned into battles "
            "between every two models scored on a prompt; several after one flag.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    no_shipped: Annotated[
        bool,
        typer.Option("--no-shipped", help="Train on your --battles/--scores files alone."),
    ] = False,
    user_weight: Annotated[
        float | None,
        typer.Option(
            "--user-weight",
            min=0.0,
            max=1.0,
            help="Share of the fit's weight your files carry beside the shipped data [0.1].",
        ),
    ] = None,
    strong: Annotated[
        str | None,
        typer.Option(
            "--strong", help="Strong model (default: chosen from your files, else the paper's)."
        ),
    ] = None,
    weak: Annotated[
        str | None,
        typer.Option(
            "--weak", help="Weak model (default: chosen from your files, else the paper's)."
        ),
    ] = None,
    eval_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--eval-file",
            help="A file you will evaluate on: its prompts leave the training data "
            "(repeat the flag for several).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    skip_bad: SkipBadOption = False,
    embedder: Annotated[
        str | None, typer.Option("--embedder", help="Embedder spec (static, minilm, api:<model>).")
    ] = None,
    mmlu_gold_slice: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="MMLU questions with golden labels to train on (left out of eval) "
            "[1500 for the paper's pair, the only one with MMLU answers; else 0].",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """Train a router on the shipped data, your own files, or both; save and calibrate it.

    Prints what became of every row of your files, the pair and why, and at the
    end the router's validation APGR and log-loss beside random and prompt length.
    """
    from prefroute.training import train_router

    artifact = train_router(
        kind,
        out,
        data_dir=data_dir,
        battle_files=battles or (),
        score_files=scores or (),
        shipped=not no_shipped,
        user_weight=user_weight,
        strong_model=strong,
        weak_model=weak,
        eval_files=eval_file or (),
        skip_bad=skip_bad,
        embedder=embedder,
        mmlu_gold_slice=mmlu_gold_slice,
        random_state=seed,
        console=console,
    )
    console.print(f"saved {kind} router to {artifact}")


EvalFileOption = Annotated[
    Path | None,
    typer.Option(
        "--eval-file",
        help="Your labels: scores (prompt, model, score|correct) or battles (prompt, "
        "model_a, model_b, winner); JSONL/CSV/Parquet.",
        exists=True,
        dir_okay=False,
    ),
]
BudgetOption = Annotated[
    float | None,
    typer.Option(
        "--budget",
        help="Target $ per 1M tokens, blended at the pair's list prices (--prices to add "
        "or change one); with --models, the mean spend among them (see --budget-unit).",
    ),
]


ModelsOption = Annotated[
    str | None,
    typer.Option(
        "--models",
        help="Choose among these models: a,b,c or all (every model the router learned).",
    ),
]
OutputTokensOption = Annotated[
    float,
    typer.Option(
        "--output-tokens", min=0.0, help="Answer tokens per call, for its price [264, the paper's]."
    ),
]
BudgetUnitOption = Annotated[
    str,
    typer.Option("--budget-unit", help="What --budget is per: 1m-tokens or 1k-requests."),
]


def parse_models(value: str) -> list[str] | None:
    """``a,b,c`` -> the names; ``all`` -> None (every model the router learned)."""
    if value.strip().lower() == "all":
        return None
    names = [m.strip() for m in value.split(",") if m.strip()]
    if not names:
        raise typer.BadParameter("give model names a,b,c or all", param_hint="--models")
    return names


@app.command()
def calibrate(
    artifact: ArtifactArg,
    strong_share: Annotated[
        float | None,
        typer.Option(
            "--strong-share", min=0.0, max=1.0, help="Share of calls for the strong model."
        ),
    ] = None,
    budget: BudgetOption = None,
    quality: Annotated[
        float | None,
        typer.Option(
            "--quality",
            min=0.0,
            max=1.0,
            help="Keep this share of the strong model's mean quality on --eval-file "
            "(served as router-<kind>@q<Q>%).",
        ),
    ] = None,
    gap_recovered: Annotated[
        float | None,
        typer.Option(
            "--gap-recovered",
            min=0.0,
            max=1.0,
            help="Recover this share of the gap between the two models on --eval-file "
            "(PGR; served as router-<kind>@pgr<G>%).",
        ),
    ] = None,
    eval_file: EvalFileOption = None,
    skip_bad: SkipBadOption = False,
    prompts: PromptsOption = None,
    prices: PricesOption = None,
    data_dir: DataDirOption = None,
    models: ModelsOption = None,
    budget_unit: BudgetUnitOption = "1m-tokens",
    shares: Annotated[
        str | None,
        typer.Option("--shares", help="With --models: a=0.2,b=0.8, the share of calls per model."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Name of the stored N-model operating point.")
    ] = None,
    output_tokens: OutputTokensOption = 264.0,
) -> None:
    """Store the thresholds that send each share of the prompts to the strong model, and
    the cheapest ones that keep a quality target on your labelled prompts; print them.

    With --models, calibrate a choice among N models instead (--budget, --quality of
    the best model's quality on --eval-file, or --shares) and store it by name.
    """
    from prefroute.calibrate import calibrate_artifact, share_for_budget
    from prefroute.calibrate import strong_share as share_of
    from prefroute.prices import PAPER_MIX, price_table
    from prefroute.routers.artifact import read_config

    if models is not None:
        if strong_share is not None or gap_recovered is not None:
            raise typer.BadParameter("--strong-share and --gap-recovered are for two models")
        _calibrate_models(
            artifact, parse_models(models), budget=budget, budget_unit=budget_unit,
            quality=quality, eval_file=eval_file, shares=shares, name=name, prompts=prompts,
            prices=prices or (), output_tokens=output_tokens, data_dir=data_dir,
        )  # fmt: skip
        return
    if strong_share is not None and budget is not None:
        raise typer.BadParameter("give --strong-share or --budget, not both")
    if (quality is not None or gap_recovered is not None) and eval_file is None:
        raise typer.BadParameter("--quality and --gap-recovered are measured on --eval-file")
    share = strong_share  # everything checked before the slow part, which rewrites the artifact
    table = price_table(prices or ())
    pair = read_config(artifact).models
    price_lines: list[str] = []
    if budget is not None:
        strong_price, weak_price = table.price(pair.strong), table.price(pair.weak)
        share = share_for_budget(budget, strong_price.blended(), weak_price.blended())
        price_lines = [strong_price.line(pair.strong), weak_price.line(pair.weak)]
        price_lines.append(f"at {PAPER_MIX}")
    with errors.status(f"scoring the calibration prompts with {artifact}"):
        done = calibrate_artifact(
            artifact,
            prompts=prompts,
            eval_file=eval_file,
            quality=() if quality is None else (quality,),
            gap_recovered=() if gap_recovered is None else (gap_recovered,),
            skip_bad=skip_bad,
            data_dir=data_dir,
        )
    router, scores = done.router, done.scores
    kind = router.kind
    lines = [
        f"stored in {artifact}/router.json:",
        f"  shares: the threshold for every whole percent of strong calls, from "
        f"{len(scores):,} calibration prompts ({done.prompts}); serve as router-{kind}@<share>%",
    ]
    for target in router.calibration_.targets:
        kept = "" if target in done.targets else " (stored before, kept)"
        what = "of the strong model's quality" if target.measure == "quality" else "of the gap"
        lines.append(
            f"  {target.name}{kept}: threshold {target.threshold:.6g} keeps "
            f"{target.reached:.1%} {what} (asked {target.target:.0%}) sending "
            f"{target.strong_share:.1%} of {target.n_prompts:,} prompts of {target.eval_file} to "
            f"{router.strong_model}; serve as router-{kind}@{target.name}%"
        )
    if done.eval_set is not None:
        from prefroute.evals.evaluate import set_warnings
        from prefroute.evals.metrics import oracle_curve, quality_gap

        s = done.eval_set
        gap = quality_gap(s.strong_quality, s.weak_quality)
        oracle = oracle_curve(s.strong_quality, s.weak_quality)
        lines += [f"  warning: {w}" for w in set_warnings(s, gap, oracle)]
    if share is not None:
        threshold = router.threshold_for_share(share)
        reached = share_of(scores, threshold)
        unreachable = (
            f"; tied scores make {share:.1%} unreachable on these prompts, {reached:.1%} is "
            "the closest share"
            if abs(reached - share) > UNREACHABLE_GAP
            else ""
        )
        asked = f"budget ${budget:g} per 1M tokens: " if budget is not None else ""
        lines.append(
            f"{asked}threshold {threshold:.6g} sends {reached:.1%} of {len(scores):,} "
            f"calibration prompts to {router.strong_model} (asked for {share:.1%}{unreachable}); "
            f"serve it as router-{kind}@{round(share * 100)}% or router-{kind}-{threshold:.6g}"
        )
    if price_lines:
        lines.append("prices: " + "; ".join(price_lines))
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def _parse_shares(text: str) -> dict[str, float]:
    """``a=0.2,b=0.8`` -> {a: 0.2, b: 0.8}."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        model, sep, value = part.partition("=")
        try:
            out[model.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not model.strip():
            raise typer.BadParameter(
                f"expected model=share pairs like a=0.2,b=0.8, got {part!r}", param_hint="--shares"
            )
    return out


def _calibrate_models(
    artifact: Path,
    models: list[str] | None,
    *,
    budget: float | None,
    budget_unit: str,
    quality: float | None,
    eval_file: Path | None,
    shares: str | None,
    name: str | None,
    prompts: Path | None,
    prices: Sequence[Path],
    output_tokens: float,
    data_dir: Path | None,
) -> None:
    """``calibrate --models``: one N-model operating point, stored by name."""
    from prefroute.calibrate import calibrate_models

    with errors.status(f"scoring the calibration prompts with {artifact}"):
        router, point = calibrate_models(
            artifact, models=models, budget=budget, budget_unit=budget_unit,
            quality_target=quality, eval_file=eval_file,
            shares=None if shares is None else _parse_shares(shares),
            prompts=prompts, prices=prices, output_tokens=output_tokens, name=name,
            data_dir=data_dir,
        )  # fmt: skip
    spread = ", ".join(f"{m} {s:.1%}" for m, s in point.shares.items() if s > 0)
    console.print(
        f"stored operating point {point.name!r} ({point.target}) among {len(point.models)} "
        f"models, λ = {point.lam:.6g}: on {point.n_prompts:,} calibration prompts it costs "
        f"${point.cost_per_1m_tokens:.4g} per 1M tokens (${point.cost_per_1k_requests:.4g} "
        f"per 1k requests): {spread}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def route(
    artifact: ArtifactArg,
    file: Annotated[
        str, typer.Argument(help="Prompts: .txt lines, JSONL/CSV/Parquet, or - for stdin.")
    ] = "-",
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold", min=0.0, max=1.0, help="Score threshold: strong at or above it."
        ),
    ] = None,
    strong_share: Annotated[
        float | None,
        typer.Option("--strong-share", min=0.0, max=1.0, help="Use the calibrated threshold."),
    ] = None,
    budget: BudgetOption = None,
    prices: PricesOption = None,
    models: ModelsOption = None,
    budget_unit: BudgetUnitOption = "1m-tokens",
    point: Annotated[
        str | None,
        typer.Option("--point", help="Route among N models at a stored operating point."),
    ] = None,
    output_tokens: OutputTokensOption = 264.0,
) -> None:
    """Route prompts; write JSONL lines {"id", "score", "model"} to stdout.

    A progress bar while scoring and a summary (prompts routed, share to each
    model, $ estimated at the pair's list prices) go to stderr, so stdout stays
    JSONL. ``--budget`` picks the calibrated share whose blended price is the budget.
    With --models and --budget (λ fitted to these prompts), or --point (a stored
    operating point), choose among N models: each line has every candidate's score
    and the chosen model's estimated cost.
    """
    from prefroute.calibrate import share_for_budget
    from prefroute.data.prompts import read_prompts
    from prefroute.prices import price_table
    from prefroute.routers.base import Router

    if models is not None or point is not None:
        _route_models(
            artifact, file, models=models, budget=budget, budget_unit=budget_unit, point=point,
            prices=prices or (), output_tokens=output_tokens, binary=(threshold, strong_share),
        )  # fmt: skip
        return

    if sum(choice is not None for choice in (threshold, strong_share, budget)) != 1:
        raise typer.BadParameter("give exactly one of --threshold, --strong-share or --budget")
    table = price_table(prices or ())
    with errors.status(f"loading {artifact}"):
        router = Router.load(artifact)
    strong_model, weak_model = router.strong_model, router.weak_model
    if budget is not None:
        strong_price, weak_price = table.price(strong_model), table.price(weak_model)
        strong_share = share_for_budget(budget, strong_price.blended(), weak_price.blended())
    if strong_share is not None:
        threshold = router.threshold_for_share(strong_share)
    assert threshold is not None  # exactly one of the three was given
    if file == "-" and sys.stdin.isatty():
        errors.print("reading prompts from stdin, one per line (Ctrl-D to end)")
    with errors.status(f"reading {'stdin' if file == '-' else file}"):
        ids, texts = read_prompts(file)
    scores = _scores_with_progress(router, texts)
    strong = scores >= threshold
    out = typer.get_text_stream("stdout")
    for prompt_id, score, is_strong in zip(ids, scores.tolist(), strong.tolist(), strict=True):
        model = strong_model if is_strong else weak_model
        out.write(json.dumps({"id": prompt_id, "score": round(score, 6), "model": model}) + "\n")
    n_strong = int(strong.sum())
    share = n_strong / len(texts) if texts else 0.0
    summary = (
        f"routed {len(texts):,} prompts at threshold {threshold:.6g}"
        + (f" (budget ${budget:g} per 1M tokens)" if budget is not None else "")
        + f": {share:.1%} ({n_strong:,}) to {strong_model}, "
        f"{1 - share:.1%} ({len(texts) - n_strong:,}) to {weak_model}"
    )
    errors.print(summary + _routed_cost(table, router, texts, strong), highlight=False)


def _routed_cost(table: PriceTable, router: Router, texts: Sequence[str], strong: Any) -> str:
    """``; ~$X ...`` for the routed prompts at the pair's list prices, then the prices used;
    or why no $ is given (a model without a price: asked for, not invented)."""
    from prefroute.errors import UnknownPriceError
    from prefroute.prices import PAPER_MIX
    from prefroute.tokens import message_tokens

    try:
        prices = [table.price(router.strong_model), table.price(router.weak_model)]
    except UnknownPriceError as exc:
        return f"; $ not estimated: {exc}"
    answer = PAPER_MIX.output_tokens
    totals = [0.0, 0.0]
    tokens = 0.0
    for text, is_strong in zip(texts, strong.tolist(), strict=True):
        asked = message_tokens([{"role": "user", "content": text}])
        tokens += asked
        totals[0 if is_strong else 1] += prices[0 if is_strong else 1].cost(asked, answer)
    return (
        f"; ~${sum(totals):,.4f} (${totals[0]:,.4f} + ${totals[1]:,.4f}) for ~{tokens:,.0f} "
        f"input tokens estimated from the text and {answer:.0f} output tokens a call assumed "
        f"({PAPER_MIX.source})\nprices: {prices[0].line(router.strong_model)}; "
        f"{prices[1].line(router.weak_model)}"
    )


def _route_models(
    artifact: Path,
    file: str,
    *,
    models: str | None,
    budget: float | None,
    budget_unit: str,
    point: str | None,
    prices: Sequence[Path],
    output_tokens: float,
    binary: tuple[float | None, float | None],
) -> None:
    """``route --models --budget`` (λ fitted to these prompts) or ``route --point``."""
    import numpy as np

    from prefroute.calibrate import operating_point
    from prefroute.data.prompts import read_prompts
    from prefroute.policy import CallCosts, Policy
    from prefroute.prices import price_table
    from prefroute.routers.base import Router

    if any(v is not None for v in binary):
        raise typer.BadParameter("--threshold/--strong-share route two models; not with --models")
    if (budget is None) == (point is None):
        raise typer.BadParameter("choosing among models needs exactly one of --budget or --point")
    if point is not None and models is not None:
        raise typer.BadParameter("--point names its own models; give --models only with --budget")
    with errors.status(f"loading {artifact}"):
        router = Router.load(artifact)
    stored = router.operating_point(point) if point is not None else None
    if stored is not None:
        candidates = list(stored.models)
    else:
        candidates, _ = router.candidate_index(parse_models(models or "all"))
        costs = CallCosts.from_prices(candidates, price_table(prices), output_tokens=output_tokens)
    if file == "-" and sys.stdin.isatty():
        errors.print("reading prompts from stdin, one per line (Ctrl-D to end)")
    with errors.status(f"reading {'stdin' if file == '-' else file}"):
        ids, texts = read_prompts(file)
    quality = _with_progress(texts, lambda batch: router.model_quality(batch, candidates))
    if stored is None:
        stored = operating_point(
            quality, texts, costs, budget=budget, budget_unit=budget_unit, described=str(file)
        )
        how = f"{stored.target}, λ = {stored.lam:.6g} fitted on these prompts"
    else:
        how = f"operating point {stored.name!r} ({stored.target})"
    policy = Policy.from_operating_point(stored)
    decision = policy.decide(quality, texts)
    out = typer.get_text_stream("stdout")
    chosen_cost = decision.cost[np.arange(len(texts)), decision.chosen]
    for i, prompt_id in enumerate(ids):
        scores = {
            m: round(float(q), 6) for m, q in zip(candidates, decision.quality[i], strict=True)
        }
        line = {"id": prompt_id, "model": candidates[decision.chosen[i]], "scores": scores,
                "cost_usd": float(f"{chosen_cost[i]:.6g}")}  # fmt: skip
        out.write(json.dumps(line) + "\n")
    tokens = policy.costs.tokens(texts)
    total = float(chosen_cost.sum())
    per_1m = 1e6 * total / float(tokens.sum()) if len(texts) else 0.0
    spread = ", ".join(f"{m} {share:.1%}" for m, share in decision.shares().items() if share > 0)
    errors.print(
        f"routed {len(texts):,} prompts among {len(candidates)} models at {how}: {spread}; "
        f"${total:.4g} in all, ${per_1m:.4g} per 1M tokens "
        f"(${1000 * total / max(len(texts), 1):.4g} per 1k requests)",
        highlight=False,
        soft_wrap=True,
    )


def _with_progress(texts: Sequence[str], score: Any) -> np.ndarray:
    """``score(batch)`` over ``texts`` in batches of ``ROUTE_BATCH``, results stacked, with
    a progress bar on stderr."""
    import numpy as np
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("scoring", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    parts = []
    with Progress(*columns, console=errors, transient=True) as progress:
        task = progress.add_task("scoring", total=len(texts))
        for start in range(0, len(texts), ROUTE_BATCH):
            batch = texts[start : start + ROUTE_BATCH]
            parts.append(np.asarray(score(batch)))
            progress.advance(task, len(batch))
    return np.concatenate(parts) if parts else np.zeros(0)


def _scores_with_progress(router: Router, texts: Sequence[str]) -> np.ndarray:
    """``router.strong_win_rate(texts)`` in batches, with a progress bar on stderr."""
    import numpy as np

    return _with_progress(texts, router.strong_win_rate).astype(np.float32, copy=False)


@app.command("eval")
def eval_routers(
    artifacts: Annotated[
        list[Path],
        typer.Argument(help="Router artifact directories.", exists=True, file_okay=False),
    ],
    benchmark: Annotated[
        str | None,
        typer.Option(
            "--benchmark",
            help="Comma-separated benchmarks: mt-bench, mmlu, gsm8k "
            "(default: all three, or none when --eval-file is given).",
        ),
    ] = None,
    eval_file: EvalFileOption = None,
    strong: Annotated[
        str | None,
        typer.Option(
            "--strong", help="Strong model of --eval-file (default: the router's, or the file's)."
        ),
    ] = None,
    weak: Annotated[str | None, typer.Option("--weak", help="Weak model of --eval-file.")] = None,
    skip_bad: SkipBadOption = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write every number as JSON.", dir_okay=False)
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write a PNG: quality vs % strong calls.", dir_okay=False),
    ] = None,
    prices: PricesOption = None,
    data_dir: DataDirOption = None,
    models: ModelsOption = None,
    output_tokens: OutputTokensOption = 264.0,
) -> None:
    """APGR (with its 95% interval), CPT(50%/80%) and AUC of routers on the paper's
    benchmarks or your own scores or battles, with savings at the pair's list prices.

    With --models and --eval-file (scores): quality against cost among N models (AIQ,
    the single models, their hull, the oracle, the best two-model router).
    """
    from prefroute.evals.benchmarks import BENCHMARKS
    from prefroute.evals.evaluate import evaluate_artifacts
    from prefroute.evals.report import render, write_plot
    from prefroute.prices import price_table

    if models is not None:
        if eval_file is None or benchmark is not None or strong or weak:
            raise typer.BadParameter(
                "--models evaluates on --eval-file among its models; give no --benchmark, "
                "--strong or --weak"
            )
        _eval_models(
            artifacts, eval_file, parse_models(models), prices=prices or (),
            output_tokens=output_tokens, json_out=json_out, plot=plot,
        )  # fmt: skip
        return

    if (strong is None) != (weak is None):
        raise typer.BadParameter("give --strong and --weak together (or neither)")
    if strong is not None and eval_file is None:
        raise typer.BadParameter("--strong and --weak name the pair of --eval-file; give it")
    if benchmark is None:
        names = [] if eval_file else list(BENCHMARKS)
    else:
        names = [b.strip() for b in benchmark.split(",") if b.strip()]
    table = price_table(prices or ())  # a bad price file fails before the slow part
    results = evaluate_artifacts(
        artifacts,
        benchmarks=names,
        eval_files=[(eval_file, strong, weak)] if eval_file else [],
        skip_bad=skip_bad,
        data_dir=data_dir,
        prices=table,
        console=console,
    )
    render(results, console)
    _write_report(results.to_dict(), json_out, plot, lambda path: write_plot(results, path))


def _write_report(
    report: dict[str, Any], json_out: Path | None, plot: Path | None, draw: Any
) -> None:
    """``eval``'s ``--json`` (``report``) and ``--plot`` (``draw(path)``), each if asked."""
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"wrote {json_out}")
    if plot is not None:
        console.print(f"wrote {draw(plot)}")


def _eval_models(
    artifacts: Sequence[Path],
    eval_file: Path,
    models: list[str] | None,
    *,
    prices: Sequence[Path],
    output_tokens: float,
    json_out: Path | None,
    plot: Path | None,
) -> None:
    """``eval --models``: every router's cost-quality curve among the file's models."""
    from prefroute.evals.evaluate import load_artifacts
    from prefroute.evals.n_models import evaluate_models, models_file
    from prefroute.evals.report import render_models, write_models_plot
    from prefroute.prices import price_table

    routers, _ = load_artifacts(artifacts)
    # "all": the file's models that every router learned
    learned = set.intersection(*(set(r.candidate_index(None)[0]) for r in routers.values()))
    with console.status(f"reading {eval_file}"):
        eval_set = models_file(
            eval_file, models, price_table(prices), output_tokens=output_tokens, within=learned
        )
    with console.status(f"scoring {len(eval_set):,} prompts x {len(eval_set.models)} models"):
        result = evaluate_models(routers, eval_set)
    render_models(result, console)
    _write_report(result.to_dict(), json_out, plot, lambda path: write_models_plot([result], path))


@app.command()
def quickstart(
    data_dir: DataDirOption = None,
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the router artifact.", file_okay=False)
    ] = Path("prefroute-out/mf"),
    plot: Annotated[
        Path, typer.Option("--plot", help="Where to write the evaluation plot.", dir_okay=False)
    ] = Path("prefroute-out/eval.png"),
    prices: PricesOption = None,
    tables: Annotated[
        bool,
        typer.Option(
            "--tables", help="Also print the data tables (per data set, ratings, removals)."
        ),
    ] = False,
) -> None:
    """The main job on the shipped data: train, calibrate and evaluate the default router.

    Summarises the decontaminated training data, trains MF on it, calibrates it
    on real Arena prompts, evaluates it on MT-Bench, MMLU and GSM8K (table and
    PNG) and prints how to route and serve with it, and where to go for your own
    pair and labels. The output fits one screen; ``--tables`` adds the data
    tables (``prefroute data stats`` prints them too).
    """
    from prefroute.data.recipe import training_set
    from prefroute.data.stats import render as render_data
    from prefroute.data.stats import summarize_training
    from prefroute.evals.benchmarks import BENCHMARKS, benchmark
    from prefroute.evals.evaluate import evaluate
    from prefroute.evals.report import render as render_eval
    from prefroute.evals.report import write_plot
    from prefroute.prices import price_table
    from prefroute.routers.base import Router
    from prefroute.training import describe, train_router

    table = price_table(prices or ())  # a bad price file fails before the training
    with console.status("collecting and decontaminating the shipped data"):
        data = training_set(data_dir, mmlu_gold_slice=1500)
    if tables:
        render_data(summarize_training(data), console)
    describe(data, console)
    artifact = train_router("mf", out, data_dir=data_dir, data=data, console=console)

    router = Router.load(artifact)
    examples = [
        "hi, how are you?",
        "Prove that there are infinitely many primes p with p = 3 (mod 4).",
    ]
    threshold = router.threshold_for_share(0.3)  # the share the hints below use
    console.print(f"routing at {threshold:.4f}, the threshold for 30% strong calls:")
    for prompt, score in zip(examples, router.strong_win_rate(examples).tolist(), strict=True):
        model = router.strong_model if score >= threshold else router.weak_model
        console.print(f"{score:.3f} -> {model}: {prompt}", highlight=False)

    sets = [benchmark(name, data_dir, exclude_ids=data.gold_slice_ids) for name in BENCHMARKS]
    results = evaluate({"mf": router}, sets, prices=table, console=console)
    render_eval(results, console)
    console.print(f"wrote {write_plot(results, plot)}")
    console.print(
        f"router saved to {artifact}.\n"
        f"  route a file:  prefroute route {artifact} prompts.txt --strong-share 0.3\n"
        f"  serve it:      prefroute serve {artifact} --strong-base-url URL --weak-base-url URL\n"
        "                 then call model='router-mf@30%' with any OpenAI client\n"
        "your own pair and labels: docs/own-data.md; the data tables: --tables",
        highlight=False,
    )


def upstream_flags(model: str | None, base_url: str | None, key_env: str | None) -> dict[str, str]:
    """One upstream's settings from ``serve``/``label`` flags: only those given."""
    given = {"model": model, "base_url": base_url, "api_key_env": key_env}
    return {k: v for k, v in given.items() if v is not None}


@app.command()
def serve(
    routers: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Router artifact directories, one per kind.", exists=True, file_okay=False
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="TOML settings; flags override it.", exists=True, dir_okay=False
        ),
    ] = None,
    strong_model: Annotated[
        str | None, typer.Option(help="Strong upstream model id (default: the artifact's).")
    ] = None,
    strong_base_url: Annotated[
        str | None, typer.Option(help="Strong upstream base URL (default: OpenAI's).")
    ] = None,
    weak_model: Annotated[
        str | None, typer.Option(help="Weak upstream model id (default: the artifact's).")
    ] = None,
    weak_base_url: Annotated[
        str | None, typer.Option(help="Weak upstream base URL (default: OpenAI's).")
    ] = None,
    upstream_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding every upstream's API key.")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="An N-model upstream NAME=BASE_URL (repeatable; NAME as the router learned "
            "it), for router-<kind>@budget=B and router-<kind>:<point>; more in [models.NAME].",
        ),
    ] = None,
    calibration_prompts: Annotated[
        Path | None,
        typer.Option(
            help="Prompts budget names calibrate λ on [the shipped Chatbot Arena prompts].",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key",
            help="Key clients must send (repeatable). Visible in `ps`: prefer --api-key-file "
            "or $PREFROUTE_API_KEYS.",
        ),
    ] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            help="File with the keys clients may send, one per line.", exists=True, dir_okay=False
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [8000].")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Server processes sharing the port, ~1 per core [1].")
    ] = None,
    prices: PricesOption = None,
) -> None:
    """Serve routers behind an OpenAI-compatible API: POST /v1/chat/completions."""
    from prefroute.serve.app import run
    from prefroute.serve.config import load_settings

    flags = {
        "routers": [str(r) for r in routers or ()],
        "strong": upstream_flags(strong_model, strong_base_url, upstream_key_env),
        "weak": upstream_flags(weak_model, weak_base_url, upstream_key_env),
        "models": _model_flags(model or (), upstream_key_env),
        "calibration_prompts": str(calibration_prompts) if calibration_prompts else None,
        "api_keys": api_key,
        "api_key_file": str(api_key_file) if api_key_file else None,
        "host": host,
        "port": port,
        "workers": workers,
        "prices": [str(p) for p in prices or ()],
    }
    given = {k: v for k, v in flags.items() if v not in (None, [], {})}  # keeps 0: a value
    run(load_settings(config, given))


def _model_flags(given: Sequence[str], key_env: str | None) -> dict[str, dict[str, str]]:
    """``--model NAME=BASE_URL`` flags as ``[models.NAME]`` tables."""
    tables = {}
    for flag in given:
        name, sep, base_url = flag.partition("=")
        if not sep or not name.strip() or not base_url.strip():
            raise typer.BadParameter(
                f"expected NAME=BASE_URL, e.g. gpt-4o=https://api.openai.com/v1, got {flag!r}",
                param_hint="--model",
            )
        tables[name.strip()] = upstream_flags(None, base_url.strip(), key_env)
    return tables


@app.command("label")
def label_command(
    prompts: Annotated[
        Path,
        typer.Argument(
            help="Prompts: .txt lines, JSONL/CSV/Parquet with 'prompt', or a chat log "
            "with 'messages'.",
            exists=True,
            dir_okay=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Battles (or, with --mode single, scores) to write.")
    ],
    strong: Annotated[str | None, typer.Option(help="Strong model id.")] = None,
    weak: Annotated[str | None, typer.Option(help="Weak model id.")] = None,
    judge: Annotated[str | None, typer.Option(help="Judge model id.")] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="TOML upstreams, as for serve, plus [judge].", exists=True, dir_okay=False
        ),  # fmt: skip
    ] = None,
    strong_base_url: Annotated[str | None, typer.Option(help="Strong upstream base URL.")] = None,
    weak_base_url: Annotated[str | None, typer.Option(help="Weak upstream base URL.")] = None,
    judge_base_url: Annotated[str | None, typer.Option(help="Judge upstream base URL.")] = None,
    upstream_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the upstreams' API key.")
    ] = None,
    answers: Annotated[
        Path | None,
        typer.Option(
            help="Answers you have (prompt or prompt_id, model, response): not generated again.",
            exists=True,
            dir_okay=False,
        ),  # fmt: skip
    ] = None,
    mode: Annotated[
        str, typer.Option(help="pairwise (battles) or single (1-10 grades: a scores file).")
    ] = "pairwise",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Estimate tokens and $ and stop; no calls.")
    ] = False,
    max_cost: Annotated[
        float | None, typer.Option(help="Stop before this run's new calls cost more ($).")
    ] = None,
    prices: PricesOption = None,
    store: Annotated[
        Path | None, typer.Option(help="Call store (SQLite) [<out>.calls.sqlite].")
    ] = None,
    keep_answers: Annotated[
        bool, typer.Option("--keep-answers", help="Write both answers into the rows.")
    ] = False,
    concurrency: Annotated[
        int | None, typer.Option(help="Calls in flight per upstream server [16].")
    ] = None,
    rpm: Annotated[
        float | None, typer.Option(help="Requests per minute per upstream server.")
    ] = None,
    turns: Annotated[
        str | None, typer.Option(help="Routing text of a chat: first, last or all user turns.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed sent with every call [0].")] = None,
    temperature: Annotated[
        float | None, typer.Option(help="Answer sampling temperature [0].")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Longest answer in tokens [1024].")] = None,
    answer_tokens: Annotated[
        int | None,
        typer.Option(help="Answer length the --dry-run estimate assumes, in tokens [264]."),
    ] = None,
) -> None:
    """Label prompts with an LLM judge: both models answer, the judge picks, battles out."""
    from prefroute.label import Job, estimate, label, load_label_settings

    flags = {
        "strong": upstream_flags(strong, strong_base_url, upstream_key_env),
        "weak": upstream_flags(weak, weak_base_url, upstream_key_env),
        "judge": upstream_flags(judge, judge_base_url, upstream_key_env),
        "turns": turns,
    }
    settings = load_label_settings(config, {k: v for k, v in flags.items() if v})
    options: dict[str, Any] = {
        "concurrency": concurrency, "seed": seed, "temperature": temperature,
        "max_tokens": max_tokens, "answer_tokens": answer_tokens,
    }  # fmt: skip
    job = Job(
        prompts, out, mode=mode, answers=answers, store=store, keep_answers=keep_answers,  # type: ignore[arg-type]
        max_cost=max_cost, prices=tuple(prices or ()), rpm=rpm,
        **{k: v for k, v in options.items() if v is not None},
    )  # fmt: skip
    if dry_run:
        for line in estimate(job, settings).lines():
            console.print(line, highlight=False, soft_wrap=True)
        return
    summary = label(job, settings, console=errors)
    for line in summary.lines():
        console.print(line, highlight=False, soft_wrap=True)
    if summary.call_failures or summary.refused:
        raise typer.Exit(code=1)  # a rerun retries them; a --max-cost stop is not a failure
