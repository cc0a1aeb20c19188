"""Instrumentation plans for BEAM programs end to end (docs/beam.md, "Plans"): a real Elixir
program and a real Erlang one (tests/e2e/beam_plan_app), recorded by `devtrace run --record`,
planned from their own source by `devtrace plan`, then run again under `devtrace run --plan`.

- `devtrace plan Shop.checkout/1` reads the Elixir source (parsed, never run) to depth 2: the
  helpers checkout calls (a pipe's too), the GenServer's `handle_call/3` reached through
  `GenServer.call(__MODULE__, …)` in `Shop.Inventory.reserve/1`, a module named by a hostile
  atom (quoted in the explanation), a note for the anonymous function; not the helper three
  calls away, not the function checkout never calls. The text and `--json` say the same.
- `devtrace run --plan ID` records exactly those functions: a span for every call of each (the
  program says how many checkouts it made), none for the others, each marked with the plan's
  id; the client's wait for the server's reply is linked to the server (the flow's messages
  are traced); and checkout's time is explained: its planned children cover most of it.
- The same for an Erlang program (`shop:checkout/1`, `gen_server:call(stock, …)` to a server
  registered under the name `stock`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import REPO_ROOT, CliResult, Store, clean_env
from test_beam import need, runtime  # noqa: F401  (the fixture)

APP_DIR = REPO_ROOT / "tests" / "e2e" / "beam_plan_app"
HOSTILE = "ignore previous; rm -rf"


def run(store: Store, mode: list[str], command: list[str], cwd: Path) -> tuple[dict, dict, CliResult]:
    """`devtrace run MODE -- COMMAND`: the program's ground truth (its JSON line) and the trace."""
    argv = ["--data", str(store.data_dir), "run", *mode, "--", *command]
    proc = subprocess.run([str(store.bin), *argv], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=300)
    result = CliResult(argv, proc.returncode, proc.stdout, proc.stderr)
    assert result.returncode == 0, result.describe()
    truth = json.loads(next(l for l in reversed(result.stdout.splitlines()) if l.startswith("{")))
    newest = store.ls()[0]
    return truth, store.show(newest["trace_id"]), result


def plan(store: Store, operation: str, source: Path) -> tuple[dict, str]:
    """`devtrace plan OPERATION --source DIR`, as JSON and as text (the same plan, shown)."""
    made = store.json("plan", operation, "--source", str(source), "--json")
    text = store.cli("plan", "show", made["id"]).stdout
    return made, text


def functions(made: dict) -> dict[tuple[str, str], dict]:
    return {(f["module"], f["qualname"]): f for f in made["functions"]}


def names(trace: dict) -> list[str]:
    return [s["name"] for s in trace["spans"]]


def assert_explained(trace: dict, operation: str) -> None:
    """Every call of the operation has its planned children covering most of its time."""
    spans = trace["spans"]
    calls = [s for s in spans if s["name"] == operation]
    assert calls
    for call in calls:
        children = [s for s in spans if s["parent_span_id"] == call["span_id"]]
        covered = sum(s["duration_ns"] for s in children)
        assert covered >= 0.8 * call["duration_ns"], (call, children)


def assert_reply_linked(trace: dict, client_function: str, server_thread: str) -> None:
    """The client's waits inside `client_function` end with the server's reply, linked to it."""
    spans = {s["span_id"]: s for s in trace["spans"]}
    callers = {s["span_id"] for s in trace["spans"] if s["name"] == client_function}
    waits = [s for s in trace["spans"] if s["name"] == "receive" and s["parent_span_id"] in callers]
    assert len(waits) == len(callers), waits
    for wait in waits:
        linked = [spans[l["span_id"]] for l in wait["links"] if l["span_id"] in spans]
        assert any(s["attributes"]["thread.name"] == server_thread for s in linked), wait


def test_an_elixir_operation_is_planned_from_its_source_and_recorded_by_the_plan(
    store: Store, runtime: Path, tmp_path: Path  # noqa: F811
):
    need("elixir")
    app = tmp_path / "shop"
    shutil.copytree(APP_DIR / "elixir", app)
    command = ["elixir", "main.exs"]
    run(store, ["--record"], command, app)

    made, text = plan(store, "Shop.checkout/1", app)
    assert made["language"] == "elixir"
    planned = functions(made)
    depths = {key: f["depth"] for key, f in planned.items()}
    assert depths == {
        ("Elixir.Shop", "checkout/1"): 0,
        ("Elixir.Shop", "price/1"): 1,
        ("Elixir.Shop", "total/1"): 1,
        ("Elixir.Shop.Inventory", "reserve/1"): 1,
        (HOSTILE, "audit/1"): 1,
        ("Elixir.Shop", "with_tax/1"): 2,
        ("Elixir.Shop.Inventory", "handle_call/3"): 2,
    }
    assert planned[("Elixir.Shop.Inventory", "handle_call/3")]["via"] == (
        "Shop.Inventory.reserve/1 sends :reserve with GenServer.call at line 24"
    )
    assert planned[("Elixir.Shop", "total/1")]["via"] == "Shop.checkout/1 calls total/1 at line 7"
    assert planned[("Elixir.Shop", "checkout/1")]["file"] == str(app / "shop.ex")
    assert made["flows"] == [{"kind": "call", "server": "Elixir.Shop.Inventory", "tag": "reserve"}]
    [anonymous] = [n for n in made["notes"] if n["call"] == "fn"]
    assert (anonymous["caller"], anonymous["line"]) == ("Shop.checkout/1", 7)
    assert "anonymous function" in anonymous["reason"]

    assert f"plan {made['id']} for \"Shop.checkout/1\"" in text
    assert "    Shop.Inventory.handle_call/3  shop.ex:30  " in text
    assert f'    :"{HOSTILE}".audit/1  shop.ex:' in text
    assert "messages recorded (only these; others are not traced): GenServer.call :reserve to Shop.Inventory" in text
    assert '"fn" at line 7 of Shop.checkout/1: an anonymous function' in " ".join(text.split())
    assert "count_down" not in text and "Shop.Report" not in text

    truth, trace, result = run(store, ["--plan", made["id"]], command, app)
    assert "0 lost" in result.stderr, result.describe()
    recorded = names(trace)
    checkouts = truth["checkouts"]
    for name, calls in {
        "Shop.checkout/1": checkouts,
        "Shop.price/1": 2 * checkouts,
        "Shop.total/1": checkouts,
        "Shop.with_tax/1": checkouts,
        "Shop.Inventory.reserve/1": checkouts,
        "Shop.Inventory.handle_call/3": checkouts,
        f"{HOSTILE}:audit/1": checkouts,
    }.items():
        assert recorded.count(name) == calls, (name, sorted(set(recorded)))
    functions_recorded = {n for n in recorded if "/" in n}
    assert functions_recorded == {
        "Shop.checkout/1", "Shop.price/1", "Shop.total/1", "Shop.with_tax/1",
        "Shop.Inventory.reserve/1", "Shop.Inventory.handle_call/3", f"{HOSTILE}:audit/1",
    }, "only the plan's functions (not count_down/1, Shop.Report, init/1, start_link/1, main's)"
    planned_spans = [s for s in trace["spans"] if s["name"] in functions_recorded]
    assert {s["attributes"]["devtrace.plan.id"] for s in planned_spans} == {made["id"]}
    assert_reply_linked(trace, "Shop.Inventory.reserve/1", "Shop.Inventory")
    assert_explained(trace, "Shop.checkout/1")


def test_an_erlang_operation_is_planned_from_its_source_and_recorded_by_the_plan(
    store: Store, runtime: Path, tmp_path: Path  # noqa: F811
):
    erlc = need("erlc")
    need("erl")
    app = tmp_path / "shop"
    shutil.copytree(APP_DIR / "erlang", app)
    subprocess.run([erlc, "-o", str(app), *sorted(str(p) for p in app.glob("*.erl"))], check=True)
    command = ["erl", "-noshell", "-s", "shop", "main", "-s", "init", "stop"]
    run(store, ["--record"], command, app)

    made, text = plan(store, "shop:checkout/1", app)
    assert made["language"] == "erlang"
    depths = {key: f["depth"] for key, f in functions(made).items()}
    assert depths == {
        ("shop", "checkout/1"): 0,
        ("shop", "price/1"): 1,
        ("shop", "total/1"): 1,
        ("inventory", "reserve/1"): 1,
        ("shop", "with_tax/1"): 2,
        ("inventory", "handle_call/3"): 2,
    }
    assert functions(made)[("inventory", "handle_call/3")]["via"] == (
        "inventory:reserve/1 sends reserve with gen_server:call at line 8"
    )
    assert made["flows"] == [{"kind": "call", "server": "inventory", "tag": "reserve"}]
    assert [(n["call"], n["line"]) for n in made["notes"]] == [("fun", 14)]
    assert "    inventory:handle_call/3  inventory.erl:12  " in text
    assert "gen_server:call reserve to inventory" in " ".join(text.split())

    truth, trace, result = run(store, ["--plan", made["id"]], command, app)
    assert "0 lost" in result.stderr, result.describe()
    recorded = names(trace)
    checkouts = truth["checkouts"]
    assert {n: recorded.count(n) for n in set(recorded) if "/" in n} == {
        "shop:checkout/1": checkouts,
        "shop:price/1": 2 * checkouts,
        "shop:total/1": checkouts,
        "shop:with_tax/1": checkouts,
        "inventory:reserve/1": checkouts,
        "inventory:handle_call/3": checkouts,
    }
    assert_reply_linked(trace, "inventory:reserve/1", "stock")
    assert_explained(trace, "shop:checkout/1")


def test_a_beam_operation_whose_source_is_elsewhere_is_named_with_the_fix(
    store: Store, runtime: Path, tmp_path: Path  # noqa: F811
):
    need("elixir")
    app = tmp_path / "shop"
    shutil.copytree(APP_DIR / "elixir", app)
    run(store, ["--record"], ["elixir", "main.exs"], app)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "lib").mkdir(parents=True)
    (elsewhere / "lib" / "other.ex").write_text("defmodule Other do\n  def checkout(_), do: :ok\nend\n")
    result = store.cli("plan", "Shop.checkout/1", "--source", str(elsewhere), check=False)
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert (
        f'"Shop.checkout/1" is function "checkout/1" of module "Shop", but no .ex or .exs file under {elsewhere} defines it; '
        "pass --source DIR where the program's source is"
    ) in message, result.describe()
