"""devtrace's BEAM runtime as a Mix path dependency, recording from the project's config with no
`devtrace run` around it (docs/beam.md, "As a Mix dependency"): a real Mix project written for
the test takes `{:devtrace_beam, path: ".../sdk/beam"}`, says `config :devtrace_beam, record:
true, dir: ...`, and its `mix test` (Debian's Elixir and OTP; no Hex, no network; HOME a temporary
directory) drives a GenServer from two Tasks.

- The dependency compiles (its Erlang modules and the tracer NIF, by its mix.exs's compiler
  step), the application starts recording before the project's code runs, and the VM leaves
  its ring file `devtrace-beam-OSPID.ring` in `dir`; `devtrace recover --dir` writes it into a
  store, where `devtrace ls` lists it and `show` reads the GenServer's callbacks with the state
  before and after each, its processes by name, the Tasks' calls.
- `mix run -e` (its code runs in the process running the Mix task, which existed before
  recording began) and `iex -S mix` (an expression typed at the prompt) are recorded too.
- `seconds: 1` makes the recovered window the last second of the run.
- Without `record: true` nothing is recorded; without `dir` the file goes into the system's
  temporary directory; under `devtrace run --record` the config records nothing itself (devtrace
  run does).
- Without a runtime scripts/build-beam built, the compile step builds the NIF with cargo;
  without cargo, it takes an older one scripts/build-beam built and says so; with neither,
  compiling the dependency stops with what to install or run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from harness import REPO_ROOT, CliResult, Store, clean_env
from test_beam import need, runtime  # noqa: F401  (the fixture)

SDK = REPO_ROOT / "sdk" / "beam"

MIX_EXS = """defmodule Cart.MixProject do
  use Mix.Project

  def project do
    [app: :cart, version: "0.1.0", elixir: "~> 1.14", deps: deps()]
  end

  def application, do: [extra_applications: [:logger]]

  defp deps do
    [{:devtrace_beam, path: SDK}]
  end
end
"""

CART_SERVER = """defmodule Cart.Server do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, %{items: 0, password: "hunter2"}, name: __MODULE__)
  def add(n), do: GenServer.call(__MODULE__, {:add, n})

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:add, n}, _from, state) do
    {:reply, state.items + n, %{state | items: state.items + n}}
  end
end
"""

CART_TEST = """defmodule CartTest do
  use ExUnit.Case

  test "two clients fill the cart" do
    {:ok, _} = Cart.Server.start_link([])
    tasks = for n <- 1..2, do: Task.async(fn -> Cart.Server.add(n) end)
    Enum.each(tasks, &Task.await/1)
    assert Cart.Server.add(4) == 7
    # The ground truth: this VM's OS pid (its ring file's name) and the calls made.
    IO.puts(~s({"vm": "#{System.pid()}", "adds": [1, 2, 4]}))
  end
end
"""


def write_project(root: Path, config: str, test: str = CART_TEST) -> Path:
    """The Mix project `cart` under `root`, with `config` as its config/config.exs's body and
    `test` as its test."""
    project = root / "cart"
    for relative, text in {
        "mix.exs": MIX_EXS.replace("SDK", json.dumps(str(SDK))),
        "config/config.exs": "import Config\n" + config,
        "lib/cart/server.ex": CART_SERVER,
        "test/test_helper.exs": "ExUnit.start()\n",
        "test/cart_test.exs": test,
    }.items():
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return project


def mix_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A developer's environment with nothing of theirs touched: HOME (so ~/.mix) and TMPDIR are
    the test's; Rust's toolchain stays the machine's (RUSTUP_HOME, CARGO_HOME), should the
    dependency's compile step need cargo."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    real_home = Path.home()
    env = clean_env(
        HOME=str(home),
        TMPDIR=str(tmp),
        MIX_ENV="test",
        RUSTUP_HOME=os.environ.get("RUSTUP_HOME", str(real_home / ".rustup")),
        CARGO_HOME=os.environ.get("CARGO_HOME", str(real_home / ".cargo")),
    )
    env.update(extra)
    return env


def run(command: list[str], cwd: Path, env: dict[str, str]) -> CliResult:
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    return CliResult(command, proc.returncode, proc.stdout, proc.stderr)


def mix_test(project: Path, env: dict[str, str]) -> tuple[CliResult, dict]:
    """`mix test` of the project: the result, checked to have passed, and the test's ground truth."""
    result = run([need("mix"), "test"], project, env)
    assert result.returncode == 0 and "1 test, 0 failures" in result.stdout, result.describe()
    truth = json.loads(next(l for l in result.stdout.splitlines() if l.startswith('{"vm"')))
    return result, truth


def rings(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("devtrace-beam-*.ring"))


def test_mix_test_records_from_the_config_and_recover_writes_the_recording_into_the_store(
    store: Store, runtime: Path, tmp_path: Path
):
    ring_dir = tmp_path / "rings"
    ring_dir.mkdir()
    project = write_project(tmp_path, f"config :devtrace_beam, record: true, dir: {json.dumps(str(ring_dir))}\n")
    env = mix_env(tmp_path)
    result, truth = mix_test(project, env)
    assert "could not start recording" not in result.stderr, result.describe()

    # The VM's ring file, named after its OS pid, a recorder file.
    ring = ring_dir / f"devtrace-beam-{truth['vm']}.ring"
    assert rings(ring_dir) == [ring.name], result.describe()
    assert ring.read_bytes()[:8] == b"DTREC\0v1"
    assert rings(tmp_path / "tmp") == [], "only into the directory the config gave"

    # `devtrace recover` writes it into the store once the VM is gone, and removes it.
    recovered = store.json("recover", "--dir", str(ring_dir), "--json")
    assert [Path(r["file"]).name for r in recovered["recovered"]] == [ring.name], recovered
    assert recovered["failed"] == [] and recovered["skipped"] == [], recovered
    assert not ring.exists()
    [listed] = store.ls()
    trace = store.show(listed["trace_id"])
    spans = trace["spans"]

    # The GenServer's callbacks, in its process (by its registered name), with the state before
    # and after each: each add moves `items` by what was added, the password redacted.
    handled = sorted(
        (s for s in spans if s["name"] == "Cart.Server.handle_call/3"), key=lambda s: s["start_unix_nano"]
    )
    assert len(handled) == len(truth["adds"]), [s["name"] for s in spans]
    assert {s["attributes"]["thread.name"] for s in handled} == {"Cart.Server"}
    added = [int(re.match(r"\{:add, (\d+)\}", s["attributes"]["devtrace.call.arguments"]).group(1)) for s in handled]
    assert sorted(added) == sorted(truth["adds"])
    items = 0
    for call, n in zip(handled, added):
        before, after = call["attributes"]["devtrace.beam.state.before"], call["attributes"]["devtrace.beam.state.after"]
        assert f"items: {items}" in before and f"items: {items + n}" in after, (before, after)
        assert "hunter2" not in before + after and "password: [REDACTED:secret_name]" in after
        items += n
    [init] = [s for s in spans if s["name"] == "Cart.Server.init/1"]
    assert "items: 0" in init["attributes"]["devtrace.beam.state.after"]

    # The clients' calls: two in the Tasks' processes, one in the test's; the server's process.
    adds = [s for s in spans if s["name"] == "Cart.Server.add/1"]
    assert sorted(s["attributes"]["devtrace.call.arguments"] for s in adds) == sorted(str(n) for n in truth["adds"])
    assert len({s["attributes"]["thread.name"] for s in adds}) == 3
    assert [s["name"] for s in spans if s["name"] == "process Cart.Server"] == ["process Cart.Server"]

    # `devtrace show` reads it as any trace: the server by name, the state as data.
    shown = store.cli("show", listed["trace_id"]).stdout
    assert "Cart.Server.handle_call/3" in shown and "hunter2" not in shown, shown


def test_mix_run_records_the_code_it_runs_in_mixs_own_process(store: Store, runtime: Path, tmp_path: Path):
    """`mix run -e` evaluates its code in the process running the Mix task, which existed before
    the application started recording: it is recorded too."""
    ring_dir = tmp_path / "rings"
    project = write_project(tmp_path, f"config :devtrace_beam, record: true, dir: {json.dumps(str(ring_dir))}\n")
    code = '{:ok, _} = Cart.Server.start_link([]); IO.puts("total=#{Cart.Server.add(5)} vm=#{System.pid()}")'
    result = run([need("mix"), "run", "-e", code], project, mix_env(tmp_path))
    assert result.returncode == 0, result.describe()
    vm = re.search(r"total=5 vm=(\d+)", result.stdout).group(1)
    assert rings(ring_dir) == [f"devtrace-beam-{vm}.ring"], "the config's directory is made"
    store.json("recover", "--dir", str(ring_dir), "--json")
    [listed] = store.ls()
    spans = store.show(listed["trace_id"])["spans"]
    [add] = [s for s in spans if s["name"] == "Cart.Server.add/1"]
    [start] = [s for s in spans if s["name"] == "Cart.Server.start_link/1"]
    assert (add["attributes"]["devtrace.call.arguments"], add["attributes"]["devtrace.call.return"]) == ("5", "5")
    assert add["attributes"]["thread.name"] == start["attributes"]["thread.name"] != "Cart.Server"
    [handled] = [s for s in spans if s["name"] == "Cart.Server.handle_call/3"]
    assert "items: 5" in handled["attributes"]["devtrace.beam.state.after"]


def test_iex_s_mix_records_what_the_session_typed(store: Store, runtime: Path, tmp_path: Path):
    """`iex -S mix` as a developer uses it: an expression typed at the prompt (here piped in),
    the session ended with `System.halt/1`; the file stays for `devtrace recover`."""
    ring_dir = tmp_path / "rings"
    project = write_project(tmp_path, f"config :devtrace_beam, record: true, dir: {json.dumps(str(ring_dir))}\n")
    typed = '{:ok, _} = Cart.Server.start_link([]); IO.puts("total=#{Cart.Server.add(3)} vm=#{System.pid()}")\nSystem.halt(0)\n'
    proc = subprocess.run(
        [need("iex"), "-S", "mix"], cwd=project, env=mix_env(tmp_path), input=typed, capture_output=True, text=True, timeout=600
    )
    result = CliResult(["iex", "-S", "mix"], proc.returncode, proc.stdout, proc.stderr)
    assert result.returncode == 0, result.describe()
    vm = re.search(r"total=3 vm=(\d+)", result.stdout).group(1)
    assert rings(ring_dir) == [f"devtrace-beam-{vm}.ring"]
    store.json("recover", "--dir", str(ring_dir), "--json")
    [listed] = store.ls()
    spans = store.show(listed["trace_id"])["spans"]
    [add] = [s for s in spans if s["name"] == "Cart.Server.add/1"]
    assert (add["attributes"]["devtrace.call.arguments"], add["attributes"]["devtrace.call.return"]) == ("3", "3")


def test_without_a_built_runtime_the_dependency_builds_the_nif_with_cargo(runtime: Path, tmp_path: Path):
    """No runtime scripts/build-beam built in the target directory: the compile step builds the
    NIF with cargo there (a copy of the checkout's NIF build, so cargo does only what is new)."""
    need("cargo")
    target = tmp_path / "target"
    target.mkdir()
    built = REPO_ROOT / "target" / "beamrecorder"
    if built.is_dir():
        shutil.copytree(built, target / "beamrecorder", symlinks=True)
    ring_dir = tmp_path / "rings"
    project = write_project(tmp_path, f"config :devtrace_beam, record: true, dir: {json.dumps(str(ring_dir))}\n")
    result, truth = mix_test(project, mix_env(tmp_path, CARGO_TARGET_DIR=str(target)))
    assert "devtrace_beam: building the tracer NIF with cargo (crates/devtrace-beamrecorder)" in result.stdout, result.describe()
    assert "using the tracer NIF scripts/build-beam built" not in result.stdout + result.stderr, result.describe()
    assert not (target / "beam").exists()
    installed = project / "_build" / "test" / "lib" / "devtrace_beam" / "priv" / "devtrace_beam_nif.so"
    assert installed.read_bytes() == (target / "beamrecorder" / "release" / "libdevtrace_beam_nif.so").read_bytes()
    assert rings(ring_dir) == [f"devtrace-beam-{truth['vm']}.ring"]


SLOW_CART_TEST = """defmodule CartTest do
  use ExUnit.Case

  test "one add, a pause, another" do
    {:ok, _} = Cart.Server.start_link([])
    Cart.Server.add(1)
    Process.sleep(1500)
    Cart.Server.add(2)
    IO.puts(~s({"vm": "#{System.pid()}"}))
  end
end
"""


def test_seconds_is_the_window_recover_keeps(store: Store, runtime: Path, tmp_path: Path):
    """`seconds: 1`: of an add, a pause of 1.5 s and another add, the recovered window holds the
    last second, so the second add only."""
    ring_dir = tmp_path / "rings"
    config = f"config :devtrace_beam, record: true, dir: {json.dumps(str(ring_dir))}, seconds: 1\n"
    project = write_project(tmp_path, config, SLOW_CART_TEST)
    mix_test(project, mix_env(tmp_path))
    recovered = store.json("recover", "--dir", str(ring_dir), "--json")
    [window] = recovered["recovered"]
    assert 0.9 <= window["seconds"] <= 1.0, window
    [listed] = store.ls()
    spans = store.show(listed["trace_id"])["spans"]
    assert [s["attributes"]["devtrace.call.arguments"] for s in spans if s["name"] == "Cart.Server.add/1"] == ["2"]


def test_without_record_true_nothing_is_recorded(runtime: Path, tmp_path: Path):
    ring_dir = tmp_path / "rings"
    ring_dir.mkdir()
    project = write_project(tmp_path, f"config :devtrace_beam, dir: {json.dumps(str(ring_dir))}\n")
    mix_test(project, mix_env(tmp_path))
    assert rings(ring_dir) == [] and rings(tmp_path / "tmp") == []


def test_without_a_dir_the_ring_file_goes_into_the_temporary_directory(runtime: Path, tmp_path: Path):
    project = write_project(tmp_path, "config :devtrace_beam, record: true, mib: 8\n")
    _, truth = mix_test(project, mix_env(tmp_path))
    ring = tmp_path / "tmp" / f"devtrace-beam-{truth['vm']}.ring"
    assert rings(tmp_path / "tmp") == [ring.name]
    assert ring.stat().st_size <= 8 << 20, "`mib: 8` sizes the file"


def test_under_devtrace_run_the_config_leaves_recording_to_devtrace_run(
    store: Store, runtime: Path, tmp_path: Path
):
    ring_dir = tmp_path / "rings"
    ring_dir.mkdir()
    project = write_project(tmp_path, f"config :devtrace_beam, record: true, dir: {json.dumps(str(ring_dir))}\n")
    argv = [str(store.bin), "--data", str(store.data_dir), "run", "--record", "--", need("mix"), "test"]
    result = run(argv, project, mix_env(tmp_path))
    assert result.returncode == 0 and "1 test, 0 failures" in result.stdout, result.describe()
    assert re.search(r"BEAM VM \d+.* recorded", result.stderr), result.describe()
    assert "could not start recording" not in result.stderr, result.describe()
    assert rings(ring_dir) == [], "the config's recording did not start beside devtrace run's"
    [listed] = store.ls()
    handled = [s for s in store.show(listed["trace_id"])["spans"] if s["name"] == "Cart.Server.handle_call/3"]
    assert len(handled) == 3


def without_cargo_path(tmp_path: Path) -> str:
    """PATH with no `cargo` on it: a directory holding one stands in as a directory of links to
    its other programs (mix may be among them)."""
    kept = []
    for i, directory in enumerate(Path(d) for d in os.environ["PATH"].split(os.pathsep) if d):
        if not (directory / "cargo").exists():
            kept.append(str(directory))
            continue
        links = tmp_path / f"path-{i}"
        links.mkdir(exist_ok=True)
        for program in directory.iterdir():
            if program.name != "cargo":
                (links / program.name).symlink_to(program)
        kept.append(str(links))
    path = os.pathsep.join(kept)
    assert shutil.which("cargo", path=path) is None and shutil.which("mix", path=path)
    return path


def test_compiling_without_cargo_or_a_built_runtime_says_what_to_install_or_run(tmp_path: Path):
    need("mix")
    project = write_project(tmp_path, "config :devtrace_beam, record: true\n")
    empty_target = tmp_path / "no-target"
    env = mix_env(tmp_path, PATH=without_cargo_path(tmp_path), CARGO_TARGET_DIR=str(empty_target))
    result = run([need("mix"), "compile"], project, env)
    assert result.returncode != 0, result.describe()
    assert (
        "** (Mix) devtrace_beam: cannot build the tracer NIF (crates/devtrace-beamrecorder): cargo was not "
        "found on PATH. Install Rust (https://rustup.rs) and compile again, or build devtrace's BEAM runtime "
        f"once with scripts/build-beam in {REPO_ROOT}\n"
    ) in result.stdout + result.stderr, result.describe()
    assert not list(project.glob("_build/test/lib/devtrace_beam/priv/*.so"))


def test_without_cargo_an_older_built_runtime_is_used_with_a_warning(runtime: Path, tmp_path: Path):
    """cargo missing, and the NIF scripts/build-beam built older than the crates' sources: it is
    used, and the compile says so and how to bring it up to date."""
    target = tmp_path / "target"
    prebuilt = target / "beam" / "devtrace_beam" / "priv" / "devtrace_beam_nif.so"
    prebuilt.parent.mkdir(parents=True)
    shutil.copy(runtime / "devtrace_beam" / "priv" / "devtrace_beam_nif.so", prebuilt)
    os.utime(prebuilt, (0, 0))
    ring_dir = tmp_path / "rings"
    project = write_project(tmp_path, f"config :devtrace_beam, record: true, dir: {json.dumps(str(ring_dir))}\n")
    result, truth = mix_test(project, mix_env(tmp_path, PATH=without_cargo_path(tmp_path), CARGO_TARGET_DIR=str(target)))
    assert (
        f"devtrace_beam: cargo was not found on PATH; using the tracer NIF scripts/build-beam built ({prebuilt}), "
        f"older than its sources in crates/devtrace-beamrecorder: run scripts/build-beam in {REPO_ROOT} to bring it up to date\n"
    ) in result.stderr, result.describe()
    assert rings(ring_dir) == [f"devtrace-beam-{truth['vm']}.ring"]
