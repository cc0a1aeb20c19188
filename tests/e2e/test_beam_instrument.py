"""`devtrace run --record --instrument`: the program's modules recompiled from their debug info
with devtrace's probes in them (sdk/beam/src/devtrace_beam_instrument.erl) rather than traced.

- A Mix project run as a developer runs it (`mix run -e`, its modules loaded as they are first
  called): every call with its arguments and result, an exception raised and rescued, a
  GenServer's call, its reply and its state (its messages are sent and received in OTP's `gen`
  modules, whose sends and receives are probed too), a message sent with `send/2` to a spawned
  process and the wait it ended; the program's output unchanged; the modules that could not be
  instrumented (compiled in memory: mix.exs, the `-e` expression) named on stderr; the
  project's modules compiled with probes into the cache before Mix runs, and taken from it the
  next time.
- `mix test` on a project never compiled (Mix compiles it in the recorded VM): the tests' calls
  with their values, the GenServer's state and its reply linked.
- An Erlang program compiled with `erlc +debug_info`: the instrumented recording holds the same
  calls, values and message links as the traced one of the same program (but for the functions
  the compiler makes, a list comprehension's loop: the probes are in the source's functions),
  and its server's loop stays a tail call (each turn a span beside the last, not inside it).
- Anonymous functions (`fn`, `&(&1 …)`, a `for`'s body) recorded as spans named after the
  function they are in, with their arguments, results and exceptions, under the same names as
  when the program is traced.
- A module loaded while the program calls it in a loop (the instrumenter's load, traced by the
  VM's on-load pattern until the instrumenter takes the pattern off): each call recorded once.
- `iex -S mix` as a developer uses it: a first session on a cache never filled (the shell runs
  while the probes are compiled: its calls are recorded), and a module edited and `recompile`d
  in a session (instrumented again: its messages recorded after the recompile as before it).
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

from harness import Store, clean_env
from test_beam import APP_DIR, by_id, message_links, need, recorded_command, runtime, spans_named  # noqa: F401

SHOP = """defmodule Shop do
  def total(items), do: items |> Enum.map(&price/1) |> Enum.sum()
  def price(n), do: n * 3
end

defmodule Shop.Stock do
  use GenServer
  def start_link(n), do: GenServer.start_link(__MODULE__, n, name: __MODULE__)
  def init(n), do: {:ok, n}
  def take(k), do: GenServer.call(__MODULE__, {:take, k})
  def handle_call({:take, k}, _from, n) when k <= n, do: {:reply, :ok, n - k}
  def handle_call({:take, _}, _from, n), do: {:reply, :none, n}
end

defmodule Shop.Main do
  def run do
    {:ok, _} = Shop.Stock.start_link(5)
    :ok = Shop.Stock.take(2)
    parent = self()
    child = spawn(fn -> receive do {:price, n} -> send(parent, {:priced, Shop.price(n)}) end end)
    send(child, {:price, 4})
    priced = receive do {:priced, p} -> p after 1000 -> :timeout end
    caught = try do risky(0) rescue e in ArithmeticError -> {:caught, e.message} end
    IO.puts("total=#{Shop.total([1, 2])} priced=#{priced} caught=#{inspect(caught)}")
  end
  def risky(n), do: 10 / n
end
"""


def compiled_project(tmp_path: Path, name: str, source: str) -> Path:
    """A new Mix project `name` whose lib/NAME.ex is `source`, compiled."""
    mix = need("mix")
    subprocess.run([mix, "new", name], cwd=tmp_path, env=clean_env(), check=True, capture_output=True, timeout=120)
    project = tmp_path / name
    (project / "lib" / f"{name}.ex").write_text(source)
    subprocess.run([mix, "compile"], cwd=project, env=clean_env(), check=True, capture_output=True, timeout=300)
    return project


def test_a_mix_project_is_recorded_through_its_probes(store: Store, runtime: Path, tmp_path: Path):
    mix = need("mix")
    project = compiled_project(tmp_path, "shop", SHOP)
    result, trace = recorded_command(
        store, [mix, "run", "-e", "Shop.Main.run()"], project, flags=("--instrument",),
        DEVTRACE_BEAM_CACHE=str(tmp_path / "cache"),
    )
    assert 'total=9 priced=12 caught={:caught, "bad argument in arithmetic expression"}' in result.stdout, result.describe()
    # The project's three modules compiled with probes before Mix ran (kept for the next run).
    assert f"devtrace: --instrument: compiling probes into 3 modules (once: kept in {tmp_path / 'cache'})" in result.stderr
    assert "devtrace: --instrument: 'Elixir.Shop.MixProject' was compiled in memory" in result.stderr, result.stderr
    assert "Elixir.Shop.Main" not in result.stderr and "Elixir.Shop.Stock" not in result.stderr, result.stderr
    spans = by_id(trace)

    [total] = spans_named(trace, "Shop.total/1")
    assert (total["attributes"]["devtrace.call.arguments"], total["attributes"]["devtrace.call.return"]) == ("[1, 2]", "9")
    prices = sorted(s["attributes"]["devtrace.call.arguments"] for s in spans_named(trace, "Shop.price/1"))
    assert prices == ["1", "2", "4"]
    [risky] = spans_named(trace, "Shop.Main.risky/1")
    assert risky["status"]["code"] == "error" and risky["status"]["message"] == "error:badarith", risky["status"]
    [run] = spans_named(trace, "Shop.Main.run/0")
    assert run["status"]["code"] != "error", "the exception was rescued inside run/0"

    # The GenServer: its callback with the state before and after, the client's wait for the
    # reply linked to the server, the server's wait linked to the client's call.
    [take] = spans_named(trace, "Shop.Stock.handle_call/3")
    assert take["attributes"]["thread.name"] == "Shop.Stock"
    assert (take["attributes"]["devtrace.beam.state.before"], take["attributes"]["devtrace.beam.state.after"]) == ("5", "3")
    [client] = spans_named(trace, "Shop.Stock.take/1")
    [reply_wait] = [s for s in trace["spans"] if s["parent_span_id"] == client["span_id"] and s["name"] == "receive"]
    assert [spans[l["span_id"]]["attributes"]["thread.name"] for l in message_links(reply_wait)] == ["Shop.Stock"]
    server_waits = [s for s in trace["spans"] if s["name"] == "receive" and s["attributes"]["thread.name"] == "Shop.Stock"]
    assert any(spans[l["span_id"]]["name"] == "Shop.Stock.take/1" for s in server_waits for l in message_links(s))

    # send/2 to the spawned process, and its answer.
    [child_price] = [s for s in spans_named(trace, "Shop.price/1") if s["attributes"]["devtrace.call.arguments"] == "4"]
    child = child_price["attributes"]["thread.name"]
    assert child != run["attributes"]["thread.name"]
    [asked] = [s for s in trace["spans"] if s["name"] == "receive" and s["attributes"]["thread.name"] == child]
    assert [spans[l["span_id"]]["name"] for l in message_links(asked)] == ["Shop.Main.run/0"]
    answered = [
        s for s in trace["spans"]
        if s["name"] == "receive" and s["parent_span_id"] == run["span_id"]
        and any(spans[l["span_id"]]["attributes"]["thread.name"] == child for l in message_links(s))
    ]
    assert len(answered) == 1

    # Run again: the probes come from the cache, and the recording holds the same spans.
    store_again = Store(bin=store.bin, data_dir=tmp_path / "again")
    store_again.data_dir.mkdir()
    again, trace_again = recorded_command(
        store_again, [mix, "run", "-e", "Shop.Main.run()"], project, flags=("--instrument",),
        DEVTRACE_BEAM_CACHE=str(tmp_path / "cache"),
    )
    assert "compiling probes" not in again.stderr, again.stderr
    program = lambda t: Counter(s["name"] for s in t["spans"] if s["name"].startswith("Shop."))  # noqa: E731
    assert program(trace_again) == program(trace)


SHOP_TESTS = """defmodule ShopTest do
  use ExUnit.Case
  test "a total is the sum of the prices" do
    assert Shop.total([1, 2]) == 9
  end

  test "stock is taken" do
    {:ok, _} = Shop.Stock.start_link(5)
    assert Shop.Stock.take(2) == :ok
  end
end
"""


def test_mix_test_of_a_new_project_is_recorded_through_its_probes(store: Store, runtime: Path, tmp_path: Path):
    """`mix test` on a project never compiled: Mix compiles it in the recorded VM (Elixir's
    compiler loads each module before it writes its file; the runtime instruments it once the
    file is there), then the tests run."""
    mix = need("mix")
    subprocess.run([mix, "new", "shop"], cwd=tmp_path, env=clean_env(), check=True, capture_output=True, timeout=120)
    project = tmp_path / "shop"
    (project / "lib" / "shop.ex").write_text(SHOP)
    (project / "test" / "shop_test.exs").write_text(SHOP_TESTS)
    result, trace = recorded_command(
        store, [mix, "test"], project, flags=("--instrument",), DEVTRACE_BEAM_CACHE=str(tmp_path / "cache")
    )
    assert "2 tests, 0 failures" in result.stdout, result.describe()
    assert "Elixir.Shop.Stock" not in result.stderr and "Elixir.Shop.Main" not in result.stderr, result.stderr
    spans = by_id(trace)
    [test] = spans_named(trace, "ShopTest.test a total is the sum of the prices/1")
    [total] = spans_named(trace, "Shop.total/1")
    assert total["parent_span_id"] == test["span_id"]
    assert (total["attributes"]["devtrace.call.arguments"], total["attributes"]["devtrace.call.return"]) == ("[1, 2]", "9")
    [handled] = spans_named(trace, "Shop.Stock.handle_call/3")
    assert (handled["attributes"]["devtrace.beam.state.before"], handled["attributes"]["devtrace.beam.state.after"]) == ("5", "3")
    [client] = spans_named(trace, "Shop.Stock.take/1")
    [reply_wait] = [s for s in trace["spans"] if s["parent_span_id"] == client["span_id"] and s["name"] == "receive"]
    assert [spans[l["span_id"]]["attributes"]["thread.name"] for l in message_links(reply_wait)] == ["Shop.Stock"]


def shape(trace: dict) -> tuple[Counter, Counter]:
    """What a recording of pingpong holds: its calls by name, arguments and result (but the
    compiler's own functions, `pingpong:-start/0-lc$^0/1-0-/1`: the probes are in the source's
    functions); its message links by the waiting span's process and the sending function's name."""
    spans = by_id(trace)
    calls = Counter(
        (s["name"], s["attributes"].get("devtrace.call.arguments"), s["attributes"].get("devtrace.call.return"))
        for s in trace["spans"] if s["name"].startswith("pingpong:") and not s["name"].startswith("pingpong:-")
    )
    links = Counter(
        (s["attributes"]["thread.name"], sender(spans, spans[l["span_id"]])["name"])
        for s in trace["spans"] for l in message_links(s) if l["span_id"] in spans
    )
    return calls, links


def sender(spans: dict[str, dict], span: dict) -> dict:
    """The source's function a message was sent from: the span, or the nearest above it that is
    not the compiler's."""
    while span["name"].startswith("pingpong:-") and span.get("parent_span_id") in spans:
        span = spans[span["parent_span_id"]]
    return span


def test_an_erlang_program_instrumented_holds_what_it_holds_traced(store: Store, runtime: Path, tmp_path: Path):
    erlc, erl = need("erlc"), need("erl")
    subprocess.run([erlc, "+debug_info", "-o", str(tmp_path), str(APP_DIR / "pingpong.erl")], check=True)
    command = [erl, "-noshell", "-pa", str(tmp_path), "-s", "pingpong", "start", "-s", "init", "stop"]
    traced_store = Store(bin=store.bin, data_dir=tmp_path / "traced")
    traced_store.data_dir.mkdir()
    traced_result, traced = recorded_command(traced_store, command, tmp_path, flags=("--record-seconds", "0"))
    result, instrumented = recorded_command(
        store, command, tmp_path, flags=("--record-seconds", "0", "--instrument"), DEVTRACE_BEAM_CACHE=str(tmp_path / "cache")
    )
    assert "--instrument" not in result.stderr, "pingpong has debug info: nothing to warn of"
    assert result.stdout == traced_result.stdout
    traced_calls, traced_links = shape(traced)
    calls, links = shape(instrumented)
    assert calls == traced_calls
    assert sum(traced_links.values()) > 0
    assert links == traced_links
    # The server's loop (`server(Count + 1)' at the end of a receive clause) stays a tail call
    # under the probes: each turn's span follows the last in the server's process rather than
    # nesting in it. Traced, a trace pattern's return frame keeps every turn on the stack until
    # the loop ends, and devtrace puts the turns back one after another: the same six turns
    # beside each other, each ending where the next begins, only the last ending in the exit.
    for recording in (instrumented, traced):
        turns = sorted(spans_named(recording, "pingpong:server/1"), key=lambda s: s["start_unix_nano"])
        assert len(turns) == 6
        assert len({s["parent_span_id"] for s in turns}) == 1
        assert all(a["end_unix_nano"] <= b["start_unix_nano"] for a, b in zip(turns, turns[1:]))
        assert [s["status"]["code"] == "error" for s in turns] == [False] * 5 + [True], turns


BASKET = """defmodule Basket do
  def total(items) do
    rate = 2
    items |> Enum.map(fn {name, n} -> {name, n * rate} end) |> Enum.map(&elem(&1, 1)) |> Enum.sum()
  end

  def labels(items), do: for({name, _} <- items, do: String.upcase(name))

  def checked(items) do
    Enum.map(items, fn
      {_, n} when n > 0 -> :ok
      {name, _} -> raise ArgumentError, "none of #{name}"
    end)
  end
end

defmodule Basket.Main do
  def run do
    items = [{"tea", 2}, {"jam", 3}]
    IO.puts("total=#{Basket.total(items)} labels=#{inspect(Basket.labels(items))}")
    caught = try do Basket.checked([{"figs", 0}]) rescue e in ArgumentError -> e.message end
    IO.puts("caught=#{caught}")
  end
end
"""


def test_anonymous_functions_are_spans_named_as_when_traced(store: Store, runtime: Path, tmp_path: Path):
    project = compiled_project(tmp_path, "basket", BASKET)
    command = [need("mix"), "run", "-e", "Basket.Main.run()"]
    result, trace = recorded_command(store, command, project, flags=("--instrument",), DEVTRACE_BEAM_CACHE=str(tmp_path / "cache"))
    assert 'total=10 labels=["TEA", "JAM"]' in result.stdout and "caught=none of figs" in result.stdout, result.describe()
    spans = by_id(trace)

    def calls(name: str) -> list[tuple[str, str | None]]:
        return sorted(
            (s["attributes"]["devtrace.call.arguments"], s["attributes"].get("devtrace.call.return"))
            for s in spans_named(trace, name)
        )

    # Each fn's calls, inside the call of the function it is written in (Enum's are not
    # recorded); numbered as the compiler numbers them (its names: `-total/1-fun-1-`).
    assert calls("anonymous fn#1 in Basket.total/1") == [('{"jam", 3}', '{"jam", 6}'), ('{"tea", 2}', '{"tea", 4}')]
    assert calls("anonymous fn#0 in Basket.total/1") == [('{"jam", 6}', "6"), ('{"tea", 4}', "4")]
    [total] = spans_named(trace, "Basket.total/1")
    assert {spans[s["parent_span_id"]]["name"] for s in trace["spans"] if " in Basket.total/1" in s["name"]} == {"Basket.total/1"}
    assert total["attributes"]["devtrace.call.return"] == "10"
    # A `for`'s body is a fn the compiler makes (its arguments: the item and what is built so far).
    assert [a for a, _ in calls("anonymous fn#0 in Basket.labels/1")] == ['{"jam", 3}, ["TEA"]', '{"tea", 2}, []']
    # An exception raised in a fn is its span's status, and the enclosing call's.
    [failed] = spans_named(trace, "anonymous fn#0 in Basket.checked/1")
    assert failed["status"]["code"] == "error" and failed["status"]["message"] == "error:ArgumentError", failed["status"]
    assert spans[failed["parent_span_id"]]["name"] == "Basket.checked/1"

    # Traced, the same functions under the same names (their arguments there also hold the
    # variables a fn closes over: `rate` for total/1's first).
    traced_store = Store(bin=store.bin, data_dir=tmp_path / "traced")
    traced_store.data_dir.mkdir()
    traced_result, traced = recorded_command(traced_store, command, project)
    assert traced_result.stdout == result.stdout
    def funs(t: dict) -> Counter:
        return Counter(
            (s["name"], s["attributes"].get("devtrace.call.return"), s["status"]["code"])
            for s in t["spans"] if s["name"].startswith("anonymous fn")
        )
    assert funs(traced) == funs(trace)
    assert sum(funs(trace).values()) == 7


# Adds the directory of module `dyn` to the code path, waits (in a named fun, a loop of tail
# calls) until the instrumenter has loaded dyn, then calls dyn:f/1 until dyn's trace pattern is
# gone, and 200 times more: its first calls run the instrumented code while the VM's on-load
# pattern is still on it.
SWAP_RACE = """-module(swap_race).
-export([start/0]).
start() ->
    true = code:add_patha(filename:join(filename:dirname(code:which(?MODULE)), "../dyn")),
    Loaded = fun Wait() -> erlang:module_loaded(dyn) orelse Wait() end,
    true = Loaded(),
    io:format("calls=~b~n", [calls(0, 0)]).
calls(N, 200) -> N;
calls(N, After) ->
    N = dyn:f(N) - 1,
    case After > 0 orelse erlang:trace_info({dyn, f, 1}, traced) =:= {traced, false} of
        true -> calls(N + 1, After + 1);
        false -> calls(N + 1, 0)
    end.
"""


def test_a_call_made_while_its_module_is_swapped_in_is_recorded_once(store: Store, runtime: Path, tmp_path: Path):
    erlc, erl = need("erlc"), need("erl")
    for name, source in (("main", SWAP_RACE), ("dyn", "-module(dyn).\n-export([f/1]).\nf(N) -> N + 1.\n")):
        (tmp_path / name).mkdir()
        module = "swap_race" if name == "main" else "dyn"
        (tmp_path / name / f"{module}.erl").write_text(source)
        subprocess.run([erlc, "+debug_info", "-o", str(tmp_path / name), str(tmp_path / name / f"{module}.erl")], check=True)
    command = [erl, "-noshell", "-pa", str(tmp_path / "main"), "-s", "swap_race", "start", "-s", "init", "stop"]
    result, trace = recorded_command(
        store, command, tmp_path, flags=("--record-seconds", "0", "--instrument"), DEVTRACE_BEAM_CACHE=str(tmp_path / "cache")
    )
    calls = int(result.stdout.strip().removeprefix("calls="))
    spans = by_id(trace)
    recorded = spans_named(trace, "dyn:f/1")
    assert [s for s in recorded if spans[s["parent_span_id"]]["name"] == "dyn:f/1"] == [], "a call recorded inside itself"
    assert sorted(int(s["attributes"]["devtrace.call.arguments"]) for s in recorded) == list(range(calls))
    assert all(spans[s["parent_span_id"]]["name"] == "swap_race:calls/2" for s in recorded)


ASKING_SHOP = """defmodule Shop do
  def price(n), do: n * 3
  def ask(n) do
    me = self()
    pricer = spawn(fn -> receive do {:price, k, from} -> send(from, {:priced, price(k)}) end end)
    send(pricer, {:price, n, me})
    receive do {:priced, p} -> p end
  end
end
"""


def asking_shop(tmp_path: Path) -> Path:
    return compiled_project(tmp_path, "shop", ASKING_SHOP)


def test_iex_on_a_cache_never_filled_is_recorded_while_the_probes_compile(store: Store, runtime: Path, tmp_path: Path):
    """The typed line runs at once, while the runtime compiles OTP's and the project's modules
    with probes (a second or more): the shell's calls are recorded (traced meanwhile)."""
    project = asking_shop(tmp_path)
    typed = 'IO.puts("priced=#{Shop.price(4)}")\nSystem.halt(0)\n'
    result, trace = recorded_command(
        store, [need("iex"), "-S", "mix"], project, typed, flags=("--record-seconds", "0", "--instrument"),
        DEVTRACE_BEAM_CACHE=str(tmp_path / "cache"),
    )
    assert "priced=12" in result.stdout, result.describe()
    assert "devtrace: --instrument: compiling probes into 1 modules" in result.stderr, result.describe()
    [price] = spans_named(trace, "Shop.price/1")
    assert (price["attributes"]["devtrace.call.arguments"], price["attributes"]["devtrace.call.return"]) == ("4", "12")


def test_a_module_recompiled_in_iex_is_instrumented_again(store: Store, runtime: Path, tmp_path: Path):
    project = asking_shop(tmp_path)
    cache = str(tmp_path / "cache")
    # A session before fills the cache (and puts a second between the compile and the edit:
    # Mix sees a file changed within the second it compiled as unchanged).
    warm = Store(bin=store.bin, data_dir=tmp_path / "warm")
    warm.data_dir.mkdir()
    recorded_command(warm, [need("mix"), "run", "-e", "Shop.ask(1)"], project, flags=("--instrument",), DEVTRACE_BEAM_CACHE=cache)
    typed = "\n".join([
        'IO.puts("first=#{Shop.ask(2)}")',
        'File.write!("lib/shop.ex", String.replace(File.read!("lib/shop.ex"), "n * 3", "n * 5"))',
        "recompile()",
        "Process.sleep(500)",
        'IO.puts("second=#{Shop.ask(2)}")',
        "System.halt(0)",
    ]) + "\n"
    result, trace = recorded_command(
        store, [need("iex"), "-S", "mix"], project, typed, flags=("--record-seconds", "0", "--instrument"), DEVTRACE_BEAM_CACHE=cache
    )
    assert "first=6" in result.stdout and "second=10" in result.stdout, result.describe()
    spans = by_id(trace)
    asks = {s["attributes"]["devtrace.call.return"]: s for s in spans_named(trace, "Shop.ask/1")}
    assert sorted(asks) == ["10", "6"], asks
    # Before and after the recompile alike: the wait for the reply linked to the pricing
    # process's send (only the probes record messages under --instrument).
    for ask in asks.values():
        [wait] = [s for s in trace["spans"] if s["parent_span_id"] == ask["span_id"] and s["name"] == "receive"]
        [sender] = [spans[l["span_id"]] for l in message_links(wait)]
        assert sender["attributes"]["thread.name"] != ask["attributes"]["thread.name"]
    # The pricing process's fn, each time in the process the ask spawned.
    funs = spans_named(trace, "anonymous fn#0 in Shop.ask/1")
    assert len(funs) == 2 and all(f["attributes"]["thread.name"] != asks["6"]["attributes"]["thread.name"] for f in funs)
