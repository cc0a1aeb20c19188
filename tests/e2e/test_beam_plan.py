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
- What real Elixir code compiles to functions, in a Mix project (tests/e2e/beam_app/plan_mix,
  no dependencies) planned and run under `devtrace run --plan ID -- mix run -e …`:
  `defdelegate` (followed to its target, both recorded: the delegating function is a real
  function calling the target), the `def`s `use Kiosk.Server` injects from its `__using__`
  quote (an `unquote` of the `use`'s literal option filled in; one its options compute listed
  as not recordable), a server passed as an argument (a module as written, a module
  attribute) followed to that server's `handle_call/3`; a module and a function named by
  hostile atoms, quoted.
- A server and a module passed as arguments in Erlang (tests/e2e/beam_app/plan_erlang: a
  `-define`d registered name from an include file, a module atom), followed the same way.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import REPO_ROOT, CliResult, Store, clean_env
from test_beam import ground_truth, need, runtime  # noqa: F401  (the fixture)

APP_DIR = REPO_ROOT / "tests" / "e2e" / "beam_plan_app"
BEAM_APPS = REPO_ROOT / "tests" / "e2e" / "beam_app"
HOSTILE = "ignore previous; rm -rf"


def run(store: Store, mode: list[str], command: list[str], cwd: Path) -> tuple[dict, dict, CliResult]:
    """`devtrace run MODE -- COMMAND`: the program's ground truth (its JSON line) and the trace."""
    argv = ["--data", str(store.data_dir), "run", *mode, "--", *command]
    proc = subprocess.run([str(store.bin), *argv], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=300)
    result = CliResult(argv, proc.returncode, proc.stdout, proc.stderr)
    assert result.returncode == 0, result.describe()
    truth = ground_truth(result.stdout)
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


def compiled_erlang_app(source: Path, app: Path) -> Path:
    """An Erlang program's directory copied to `app` and compiled there with erlc."""
    erlc = need("erlc")
    need("erl")
    shutil.copytree(source, app)
    subprocess.run([erlc, "-o", str(app), *sorted(str(p) for p in app.glob("*.erl"))], cwd=app, check=True)
    return app


def recorded_elixir_shop(store: Store, tmp_path: Path) -> tuple[Path, list[str]]:
    """The Elixir shop (beam_plan_app/elixir) copied and recorded once with `--record`, so an
    operation of it can be planned: its directory and its command."""
    need("elixir")
    app = tmp_path / "shop"
    shutil.copytree(APP_DIR / "elixir", app)
    command = ["elixir", "main.exs"]
    run(store, ["--record"], command, app)
    return app, command


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
    app, command = recorded_elixir_shop(store, tmp_path)

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
    app = compiled_erlang_app(APP_DIR / "erlang", tmp_path / "shop")
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


def test_a_plan_without_message_flows_records_its_calls_in_the_processes_that_ran_them_by_name(
    store: Store, runtime: Path, tmp_path: Path  # noqa: F811
):
    """A plan with no message flow is traced by meta patterns, no process's flags set: the
    server's callback and the helper it calls are still recorded call for call, in the lane of
    the registered process that ran them, named by its registered name (which it had before
    anything was traced), and nothing else is."""
    app, command = recorded_elixir_shop(store, tmp_path)

    made, _ = plan(store, "Shop.Inventory.handle_call/3", app)
    assert {key: f["depth"] for key, f in functions(made).items()} == {
        ("Elixir.Shop.Inventory", "handle_call/3"): 0,
        ("Elixir.Shop.Inventory", "count_down/1"): 1,
    }
    assert made.get("flows", []) == [], "handle_call/3 sends to no server"

    truth, trace, result = run(store, ["--plan", made["id"]], command, app)
    assert "0 lost" in result.stderr, result.describe()
    assert calls_by_function(trace) == {
        "Shop.Inventory.handle_call/3": truth["checkouts"],
        "Shop.Inventory.count_down/1": truth["checkouts"],
    }
    planned = [s for s in trace["spans"] if s["name"].startswith("Shop.Inventory.")]
    assert {s["attributes"]["thread.name"] for s in planned} == {"Shop.Inventory"}
    assert not [s for s in trace["spans"] if s["name"] == "receive"], "no message is traced"
    assert_explained(trace, "Shop.Inventory.handle_call/3")


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


def calls_by_function(trace: dict) -> dict[str, int]:
    """How many spans each function has (spans named NAME/ARITY: not the run's own, named after
    its command)."""
    recorded = [n for n in names(trace) if re.search(r"/\d+$", n)]
    return {n: recorded.count(n) for n in set(recorded)}


def plan_summary(made: dict) -> dict[tuple[str, str], tuple[int, str, str]]:
    """Each planned function: its depth, its via and where it is (file name:line)."""
    return {
        (f["module"], f["qualname"]): (f["depth"], f["via"], f"{Path(f['file']).name}:{f['line']}")
        for f in made["functions"]
    }


def test_a_mix_projects_delegates_injected_functions_and_servers_passed_in_are_planned_and_run_under_mix_run(
    store: Store, runtime: Path, tmp_path: Path  # noqa: F811
):
    mix = need("mix")
    app = tmp_path / "kiosk"
    shutil.copytree(BEAM_APPS / "plan_mix", app, ignore=shutil.ignore_patterns("_build"))
    command = [mix, "run", "-e", "Kiosk.Main.run(5)"]
    run(store, ["--record"], command, app)  # compiles the project too, as a first `mix run` does

    made, text = plan(store, "Kiosk.sell/1", app)
    assert made["language"] == "elixir"
    passed = "passed by Kiosk.sell/1 at line"
    assert plan_summary(made) == {
        ("Elixir.Kiosk", "sell/1"): (0, "the operation's function", "kiosk.ex:16"),
        ("Elixir.Kiosk", "price/1"): (1, "Kiosk.sell/1 calls &price/1 at line 17", "kiosk.ex:11"),
        ("Elixir.Kiosk.Stock", "request/2"): (1, "Kiosk.sell/1 calls Kiosk.Stock.request/2 at line 18", "server.ex:12"),
        ("Elixir.Kiosk.Ledger", "request/2"): (1, "Kiosk.sell/1 calls Kiosk.Ledger.request/2 at line 19", "server.ex:12"),
        ("Elixir.Kiosk", "audit/1"): (1, "Kiosk.sell/1 calls audit/1 at line 20", "kiosk.ex:14"),
        ("Elixir.Kiosk.Pricing", "price_of/1"): (
            2, "Kiosk.price/1 delegates to Kiosk.Pricing.price_of/1 at line 11", "pricing.ex:3",
        ),
        ("Elixir.Kiosk.Log", "note/1"): (2, "Kiosk.Stock.request/2 calls Kiosk.Log.note/1 at line 13", "servers.ex:20"),
        ("Elixir.Kiosk.Stock", "handle_call/3"): (
            2, f"Kiosk.Stock.request/2 sends :request with GenServer.call at line 14 (server: Kiosk.Stock, {passed} 18)",
            "servers.ex:6",
        ),
        ("Elixir.Kiosk.Ledger", "handle_call/3"): (
            2, f"Kiosk.Ledger.request/2 sends :request with GenServer.call at line 14 (server: Kiosk.Ledger, {passed} 19)",
            "servers.ex:15",
        ),
        (HOSTILE, "audit it/1"): (
            2, f'Kiosk.audit/1 delegates to :"{HOSTILE}"."audit it"/1 at line 14', "pricing.ex:11",
        ),
    }
    assert made["flows"] == [
        {"kind": "call", "server": "Elixir.Kiosk.Stock", "tag": "request"},
        {"kind": "call", "server": "Elixir.Kiosk.Ledger", "tag": "request"},
    ]
    assert [(n["caller"], n["call"], n["line"]) for n in made["notes"]] == [
        ("Kiosk.Ledger.request/2", "unquote(log)", 13),
    ]
    assert made["notes"][0]["reason"] == (
        "code that use Kiosk.Server (line 12 of Kiosk.Ledger) injects, computed from its options: "
        "the source does not give it as written, so the plan cannot follow it"
    )

    assert f'    :"{HOSTILE}"."audit it"/1  pricing.ex:11  ' in text
    assert (
        "messages recorded (only these; others are not traced): "
        "GenServer.call :request to Kiosk.Stock, GenServer.call :request to Kiosk.Ledger"
    ) in " ".join(text.split())
    assert '"unquote(log)" at line 13 of Kiosk.Ledger.request/2: code that use Kiosk.Server (line 12' in " ".join(text.split())
    assert (
        '    Kiosk.Stock.handle_call/3  servers.ex:6  "Kiosk.Stock.request/2 sends :request with GenServer.call at line 14 '
        '(server: Kiosk.Stock, passed by Kiosk.sell/1 at line 18)"'
    ) in text.replace("\n      ", " "), "the via says where the server came from, whole (lines wrap at 120 columns)"
    assert "discount" not in text and "Kiosk.Main" not in text

    truth, trace, result = run(store, ["--plan", made["id"]], command, app)
    assert "0 lost" in result.stderr, result.describe()
    sells = truth["sells"]
    assert calls_by_function(trace) == {
        "Kiosk.sell/1": sells,
        # Both the delegating function and its target: defdelegate compiles to a function.
        "Kiosk.price/1": 2 * sells,
        "Kiosk.Pricing.price_of/1": 2 * sells,
        "Kiosk.audit/1": sells,
        f"{HOSTILE}:audit it/1": sells,
        "Kiosk.Stock.request/2": sells,
        "Kiosk.Ledger.request/2": sells,
        "Kiosk.Stock.handle_call/3": sells,
        "Kiosk.Ledger.handle_call/3": sells,
        # Planned through the stock's client; the ledger's (the config's default) calls it too.
        "Kiosk.Log.note/1": 2 * sells,
    }, "the plan's functions, every call: not Kiosk.Main, start_link/1, init/1, discount/1 nor Mix's own"
    planned_spans = [s for s in trace["spans"] if re.search(r"/\d+$", s["name"])]
    assert {s["attributes"]["devtrace.plan.id"] for s in planned_spans} == {made["id"]}
    assert {s["attributes"]["thread.name"] for s in planned_spans if s["name"].endswith("handle_call/3")} == {
        "Kiosk.Stock", "Kiosk.Ledger",
    }
    assert_reply_linked(trace, "Kiosk.Stock.request/2", "Kiosk.Stock")
    assert_reply_linked(trace, "Kiosk.Ledger.request/2", "Kiosk.Ledger")

    # A plan without message flows is traced by meta patterns: under `mix run` its modules load
    # after the VM starts, caught as they load and narrowed to the plan's functions the same way.
    made, _ = plan(store, "Kiosk.price/1", app)
    assert made.get("flows", []) == []
    truth, trace, result = run(store, ["--plan", made["id"]], command, app)
    assert "0 lost" in result.stderr, result.describe()
    assert calls_by_function(trace) == {
        "Kiosk.price/1": 2 * truth["sells"],
        "Kiosk.Pricing.price_of/1": 2 * truth["sells"],
    }, "only the plan's two functions, every call, though their modules loaded after recording began"


def test_an_erlang_server_and_module_passed_as_arguments_are_followed_and_recorded(
    store: Store, runtime: Path, tmp_path: Path  # noqa: F811
):
    app = compiled_erlang_app(BEAM_APPS / "plan_erlang", tmp_path / "till")
    command = ["erl", "-noshell", "-s", "till", "main", "-s", "init", "stop"]
    run(store, ["--record"], command, app)

    made, text = plan(store, "till:sell/1", app)
    assert made["language"] == "erlang"
    assert plan_summary(made) == {
        ("till", "sell/1"): (0, "the operation's function", "till.erl:13"),
        ("till_server", "request/2"): (1, "till:sell/1 calls till_server:request/2 at line 15", "till_server.erl:10"),
        ("till_server", "note/2"): (1, "till:sell/1 calls till_server:note/2 at line 16", "till_server.erl:12"),
        ("till_server", "handle_call/3"): (
            2,
            "till_server:request/2 sends request with gen_server:call at line 10 (Server: till_stock, passed by till:sell/1 at line 15)",
            "till_server.erl:16",
        ),
        ("till_log", "entry/1"): (
            2, "till_server:note/2 calls till_log:entry/1 at line 12 (Log: till_log, passed by till:sell/1 at line 16)",
            "till_log.erl:5",
        ),
    }
    assert made["flows"] == [{"kind": "call", "server": "till_server", "tag": "request"}]
    assert made["notes"] == []
    assert "gen_server:call request to till_server" in " ".join(text.split())

    truth, trace, result = run(store, ["--plan", made["id"]], command, app)
    assert "0 lost" in result.stderr, result.describe()
    sells = truth["sells"]
    assert calls_by_function(trace) == {
        "till:sell/1": sells,
        "till_server:request/2": sells,
        "till_server:note/2": sells,
        "till_server:handle_call/3": sells,
        "till_log:entry/1": sells,
    }
    assert_reply_linked(trace, "till_server:request/2", "till_stock")
