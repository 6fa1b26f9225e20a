"""Serving among N models over real HTTP: budget and operating-point names, the ladder.

A ``quality`` router trained on a real LLMRouter subset (the session fixture)
chooses among four of its models, each an upstream of its own ``[models]``
table played by the fake; prices are LLMRouter's own list. What the server
chooses is compared with ``prefroute.policy`` on the same prompts, never with
hard-coded answers.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import prefroute
from prefroute.calibrate import calibrate_models, operating_point
from prefroute.conversation import conversation_text
from prefroute.errors import ConfigError
from prefroute.policy import CallCosts, Policy
from prefroute.prices import price_table
from prefroute.serve.config import load_settings
from prefroute.testing import Behaviour, FakeUpstream

from .servers import free_port, wait_until

PRICES = Path(__file__).parents[2] / "benchmarks" / "prices" / "llmrouter.toml"
LADDER = [
    "gemma-2-9b-it",
    "mistral-7b-instruct-v0.3",
    "llama-3.1-8b-instruct",
    "llama-3.1-nemotron-51b-instruct",
]
"""Four of the subset's models, $0.1 to $0.9 per 1M tokens at LLMRouter's prices."""
LOCAL = {"gemma-2-9b-it": "local-gemma"}
"""A model the upstream knows by another id: called as that, named as the router's."""
N_REQUESTS = 48


def messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


@pytest.fixture(scope="module")
def prompts(n_model_scores) -> tuple[list[str], list[str]]:
    """(calibration prompts, request prompts): the subset's training and held-out halves."""
    train, held = n_model_scores
    return (
        train.frame["prompt"].unique(maintain_order=True).to_list(),
        held.frame["prompt"].unique(maintain_order=True).to_list()[:N_REQUESTS],
    )


@pytest.fixture(scope="module")
def calibration_file(prompts, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("n-serve") / "calibration.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts[0]))
    return path


@pytest.fixture(scope="module")
def quality_dir(quality_router, calibration_file: Path) -> Path:
    """The router as an artifact, with an operating point ``tight`` stored in it."""
    path = quality_router.save(calibration_file.parent / "quality")
    calibrate_models(
        path, models=LADDER, budget=0.3, prompts=calibration_file, prices=[PRICES], name="tight"
    )
    return path


def ladder(fake: FakeUpstream, **changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One [models] table per ladder model, all played by ``fake``, with quick timeouts."""
    url = fake.url  # type: ignore[attr-defined]
    tables = {}
    for name in LADDER:
        table: dict[str, Any] = {"base_url": url, "answer_timeout": 2.0}
        if name in LOCAL:
            table["model"] = LOCAL[name]
        tables[name] = {**table, **changes.get(name, {})}
    return tables


def n_settings(fake: FakeUpstream, calibration_file: Path, **changes: Any) -> dict[str, Any]:
    return {
        "models": ladder(fake, **changes.pop("models", {})),
        "prices": [str(PRICES)],
        "calibration_prompts": str(calibration_file),
        **changes,
    }


@pytest.fixture(scope="module")
def url(start_server, quality_dir, random_dir, fake, calibration_file) -> str:
    return start_server([quality_dir, random_dir], **n_settings(fake, calibration_file))


def chat(url: str, model: str, prompt: str = "Hello there") -> httpx.Response:
    body = {"model": model, "messages": messages(prompt)}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=20)


@pytest.fixture(scope="module")
def costs() -> CallCosts:
    return CallCosts.from_prices(LADDER, price_table([PRICES]))


@pytest.fixture(scope="module")
def calibration_quality(quality_router, prompts) -> np.ndarray:
    return quality_router.model_quality(prompts[0], LADDER)


def budgets(calibration_quality: np.ndarray, prompts, costs: CallCosts) -> tuple[float, float]:
    """A tight and a loose budget ($ per 1M tokens) inside this ladder's range on the
    calibration prompts: a quarter and three quarters of the way from the cheapest mix
    to the best models' mix."""
    texts = prompts[0]
    per_call, tokens = costs.per_call(texts), costs.tokens(texts)
    best = Policy(costs=costs).decide(calibration_quality, texts).mean_cost()
    cheapest = float(per_call.min(axis=1).mean())
    low, high = (1e6 * c / float(tokens.mean()) for c in (cheapest, best))
    return low + 0.25 * (high - low), low + 0.75 * (high - low)


def expected(router, point, prompt: str) -> list[str]:
    """The ladder's ranking by ``prefroute.policy`` for one request's routing text."""
    text = conversation_text(messages(prompt), "first") or ""
    decision = Policy.from_operating_point(point).route(router, [text])
    return [point.models[i] for i in decision.ranking[0]]


# ------------------------------------------------------------------ choosing


def test_budget_names_choose_as_the_policy_and_spend_more_as_the_budget_grows(
    url, fake, quality_router, prompts, costs, calibration_quality
) -> None:
    shares = {}
    for budget in budgets(calibration_quality, prompts, costs):
        point = operating_point(calibration_quality, prompts[0], costs, budget=budget)
        chosen = []
        for prompt in prompts[1]:
            reply = chat(url, f"router-quality@budget={budget:.6g}", prompt)
            assert reply.status_code == 200, reply.text
            ranking = expected(quality_router, point, prompt)
            h = reply.headers
            assert h["x-prefroute-chosen"] == ranking[0] and h["x-prefroute-fallback"] == "false"
            assert h["x-prefroute-runner-up"] == ranking[1]
            assert h["x-prefroute-model"] == LOCAL.get(ranking[0], ranking[0])
            assert reply.json()["model"] == h["x-prefroute-model"]
            assert float(h["x-prefroute-lambda"]) == pytest.approx(point.lam, rel=1e-5)
            assert 0.0 <= float(h["x-prefroute-runner-up-score"]) <= 1.0
            chosen.append(ranking[0])
        shares[budget] = Counter(chosen)
    tight, loose = (shares[b] for b in sorted(shares))
    price = dict(zip(LADDER, costs.input_prices, strict=True))
    spend = {b: sum(price[m] * n for m, n in c.items()) for b, c in shares.items()}
    assert spend[max(spend)] > spend[min(spend)]  # a measurably different mix
    assert tight != loose
    assert fake.calls.get("local-gemma", 0) == shares_total(shares, "gemma-2-9b-it")


def shares_total(shares: dict[float, Counter[str]], model: str) -> int:
    return sum(c[model] for c in shares.values())


def test_an_operating_point_by_name_routes_as_stored(url, quality_dir, prompts) -> None:
    router = prefroute.Router.load(quality_dir)
    point = router.operating_point("tight")
    for prompt in prompts[1][:12]:
        reply = chat(url, "router-quality:tight", prompt)
        assert reply.status_code == 200, reply.text
        ranking = expected(router, point, prompt)
        assert reply.headers["x-prefroute-chosen"] == ranking[0]
        assert reply.headers["x-prefroute-policy"] == "point=tight"
        assert float(reply.headers["x-prefroute-lambda"]) == pytest.approx(point.lam)
    listed = [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]]
    assert "router-quality:tight" in listed and "router-random-0.5" in listed


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("router-quality@budget=cheap", "positive number of $"),
        ("router-quality@budget=-1", "positive number of $"),
        ("router-quality@budget=0.5/1h", "positive number of $"),
        ("router-quality@budget=0.000001", "below the cheapest mix"),
        ("router-quality:nope", "no operating point 'nope'"),
        ("router-random@budget=0.5", "routes between its two models only"),
        ("router-quality@$0.5", "router-<kind>@budget="),
        ("gpt-4o", "router-<kind>:<point>"),
    ],
)
def test_malformed_names_are_a_400_that_says_the_accepted_forms(url, name, says) -> None:
    reply = chat(url, name)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert says in error["message"] and error["param"] == "model"


def test_budgets_per_1k_requests_and_two_model_names_still_work(url) -> None:
    assert chat(url, "router-quality@budget=100/1k").headers["x-prefroute-policy"] == (
        "budget=100/1k"
    )
    binary = chat(url, "router-random-0").headers
    assert binary["x-prefroute-role"] == "strong" and "x-prefroute-chosen" not in binary


# ------------------------------------------------------------------ the ladder


def tight_ranking(quality_dir: Path, prompt: str) -> list[str]:
    """The stored point ``tight``'s ranking of the ladder for ``prompt``."""
    router = prefroute.Router.load(quality_dir)
    return expected(router, router.operating_point("tight"), prompt)


def test_a_dead_top_model_falls_back_down_the_ladder_and_says_so(
    start_server, quality_dir, fake, calibration_file, prompts
) -> None:
    prompt = prompts[1][0]
    ranking = tight_ranking(quality_dir, prompt)
    dead = {ranking[0]: {"base_url": f"http://127.0.0.1:{free_port()}/v1"}}
    url = start_server([quality_dir], **n_settings(fake, calibration_file, models=dead))
    reply = chat(url, "router-quality:tight", prompt)
    assert reply.status_code == 200, reply.text
    h = reply.headers
    assert h["x-prefroute-chosen"] == ranking[0] and h["x-prefroute-fallback"] == "true"
    assert h["x-prefroute-model"] == LOCAL.get(ranking[1], ranking[1])
    assert reply.json()["model"] == h["x-prefroute-model"]


def test_an_open_circuit_skips_the_model_without_calling_it(
    start_server, quality_dir, fake, calibration_file, prompts
) -> None:
    prompt = prompts[1][1]
    ranking = tight_ranking(quality_dir, prompt)
    top = LOCAL.get(ranking[0], ranking[0])
    url = start_server(
        [quality_dir],
        **n_settings(fake, calibration_file, breaker_failures=1, breaker_cooldown=60),
    )
    fake.behaviours[top] = Behaviour(status=503)
    first = chat(url, "router-quality:tight", prompt)
    assert first.headers["x-prefroute-fallback"] == "true"
    calls = fake.calls[top]
    wait_until(
        lambda: httpx.get(f"{url}/health").json()["upstreams"][ranking[0]]["circuit"] == "open",
        "the circuit to open",
    )
    second = chat(url, "router-quality:tight", prompt)
    assert second.status_code == 200 and second.headers["x-prefroute-fallback"] == "true"
    assert second.headers["x-prefroute-model"] == LOCAL.get(ranking[1], ranking[1])
    assert fake.calls[top] == calls  # skipped, not called
    metrics = httpx.get(f"{url}/metrics").text
    assert f'prefroute_upstream_failures_total{{kind="circuit_open",role="{ranking[0]}"}} 1.0' in (
        metrics
    )
    assert f'prefroute_chosen_total{{model="{ranking[0]}",router="quality"}} 2.0' in metrics
    answered = LOCAL.get(ranking[1], ranking[1])
    assert f'prefroute_answered_total{{model="{answered}",upstream="{ranking[1]}"}} 2.0' in metrics


# ------------------------------------------------------------------ the client


def test_the_client_chooses_as_the_server_and_walks_the_same_ladder(
    url, fake, quality_dir, calibration_file, prompts, costs, calibration_quality
) -> None:
    tight, _ = budgets(calibration_quality, prompts, costs)
    name = f"router-quality@budget={tight:.6g}"
    client = prefroute.Client([quality_dir], retries=0, **n_settings(fake, calibration_file))
    for prompt in prompts[1][:16]:
        served = chat(url, name, prompt).headers
        decision = client.route(name, messages(prompt))
        assert decision.chosen == served["x-prefroute-chosen"]  # type: ignore[union-attr]
        assert decision.runner_up == served["x-prefroute-runner-up"]  # type: ignore[union-attr]
    answer = client.chat.completions.create(model=name, messages=messages(prompts[1][0]))
    assert answer.model == chat(url, name, prompts[1][0]).headers["x-prefroute-model"]
    ranking = client.route(name, messages(prompts[1][0])).plan
    dead = {ranking[0][0]: {"base_url": f"http://127.0.0.1:{free_port()}/v1"}}
    down = prefroute.Client(
        [quality_dir], retries=0, **n_settings(fake, calibration_file, models=dead)
    )
    assert (
        down.chat.completions.create(model=name, messages=messages(prompts[1][0])).model
        == (ranking[1][1])
    )
    client.close()
    down.close()


# ------------------------------------------------------------------ the config


def test_model_tables_come_from_the_file_and_errors_name_the_table(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(
        'routers = ["r"]\n[models."llama-3.1-8b-instruct"]\nmodel = "llama3.1:8b"\n'
        'base_url = "http://localhost:11434/v1"\ninput_cost = 0\noutput_cost = 0\n'
        "[models.gpt-4o]\nbase_url = 'ftp://x'\n"
    )
    (tmp_path / "r").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_settings(config, {"routers": []})
    lines = str(caught.value).splitlines()
    assert any(
        line.startswith(f"{config}: models.gpt-4o.base_url: ") and "ftp://x" in line
        for line in lines
    ), lines
    with pytest.raises(ConfigError, match="'strong' cannot name an N-model upstream"):
        load_settings(None, {"routers": [], "models": {"strong": {}}})


def test_a_model_without_a_price_is_one_line_before_serving(
    quality_dir, fake, calibration_file
) -> None:
    from prefroute.serve.routing import RouterSet

    changes = n_settings(fake, calibration_file, prices=[])
    settings = load_settings(None, {"routers": [str(quality_dir)], **changes})
    with pytest.raises(ConfigError, match=r"models\.llama-3\.1-nemotron-51b-instruct: no price"):
        RouterSet.load(settings)


def test_requests_spread_over_several_models_are_counted_per_model(
    url: str, prompts, costs, calibration_quality
) -> None:
    _, loose = budgets(calibration_quality, prompts, costs)
    before = _chosen(httpx.get(f"{url}/metrics").text)
    seen: Counter[str] = Counter()
    for prompt in prompts[1][:10]:
        seen[
            chat(url, f"router-quality@budget={loose:.6g}", prompt).headers["x-prefroute-chosen"]
        ] += 1
    after = _chosen(httpx.get(f"{url}/metrics").text)
    assert {m: after.get(m, 0) - before.get(m, 0) for m in seen} == dict(seen)


def _chosen(metrics: str) -> dict[str, float]:
    out = {}
    for line in metrics.splitlines():
        if line.startswith('prefroute_chosen_total{model="'):
            model = line.split('"')[1]
            out[model] = float(line.rsplit(" ", 1)[1])
    return out


def test_serve_flags_add_model_upstreams_and_fail_in_one_line(random_dir: Path) -> None:
    from typer.testing import CliRunner

    from prefroute.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["serve", str(random_dir), "--model", "no-such-model=http://h/v1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().endswith(
        "[models.no-such-model] table, or give a price file (prices, --prices)"
    )
    result = runner.invoke(app, ["serve", str(random_dir), "--model", "gpt-4o"])
    assert result.exit_code != 0 and "expected NAME=BASE_URL" in result.output
