# ExUnit tests of devtrace's BEAM runtime, in a real VM with the real NIF (scripts/test-beam
# builds both and runs `elixir -pa <runtime ebin> sdk/beam/test/devtrace_beam_test.exs`): the
# term summaries the tracer records, the initial calls it reads from real spawns and the exits
# it reads from real DOWN and EXIT messages, which modules are the program's, and a recording
# started in this VM. (ExUnit rather than EUnit: Debian's Elixir ships ExUnit; EUnit is a
# package of its own.)
ExUnit.start()

defmodule DevtraceBeam.Work do
  # A function of "the program": this module is compiled from the script, not excluded.
  def double(n), do: n * 2
  # Called thousands of times in a loop: hot.
  def step(n), do: n + 1
end

defmodule DevtraceBeam.Door do
  # A gen_statem of "the program", for the initial call the tracer reads from its spawn.
  @behaviour :gen_statem
  def callback_mode, do: :state_functions
  def init(code), do: {:ok, :locked, code}
  def locked(_type, _event, _code), do: :keep_state_and_data
end

defmodule DevtraceBeam.Cache do
  use GenServer
  def init(state), do: {:ok, state}
end

defmodule DevtraceBeamTest do
  use ExUnit.Case, async: false

  defp s(term), do: :devtrace_beam_tracer.summary(term, :erlang)
  defp ex(term), do: :devtrace_beam_tracer.summary(term, :elixir)

  test "Erlang's syntax" do
    assert s({:ok, 42, 1.5, :"Quoted atom", "text"}) == ~s({ok, 42, 1.5, 'Quoted atom', <<"text">>})
    assert s([1, 2, 3]) == "[1, 2, 3]"
    assert s(~c"sku-1") == ~s("sku-1")
    assert s([~c"ab", 7]) == ~s(["ab", 7])
    assert s([?a | ?b]) == "[97 | 98]"
    assert s([]) == "[]"
    assert s([:alias | 7]) == "[alias | 7]"
    assert s(%{a: 1}) == "\#{a => 1}"
    assert s(<<1, 2, 255>>) == "<<1, 2, 255>>"
    assert s(Bitwise.bsl(1, 100)) == "<big integer>"
    assert s(self()) =~ ~r/^<0\.\d+\.\d+>$/
  end

  test "Elixir's syntax" do
    assert ex({:ok, "text", Cart.Server, nil, true}) == ~s({:ok, "text", Cart.Server, nil, true})
    assert ex(name: "x", size: 2) == ~s([name: "x", size: 2])
    assert ex(%{__struct__: Cart.Item, sku: "a1"}) == ~s(%Cart.Item{sku: "a1"})
    assert ex(%{"two words": 1}) == ~s(%{:"two words" => 1})
    assert ex([{:"two words", 1}]) == ~s(["two words": 1])
    assert ex(self()) =~ ~r/^#PID<0\.\d+\.\d+>$/
    assert ex(~c"sku-1") == ~s(~c"sku-1")
    assert ex(String.to_charlist(String.duplicate("a", 100))) == ~s(~c") <> String.duplicate("a", 64) <> ~s("…)
  end

  test "secrets are redacted by their key" do
    assert s(%{user: "ann", password: "hunter2"}) ==
             ~s(\#{password => [REDACTED:secret_name], user => <<"ann">>})
    assert s([{:api_key, ~c"sk-123"}]) == "[{api_key, [REDACTED:secret_name]}]"
    assert ex(%{"auth_token" => "abc"}) == ~s(%{"auth_token" => [REDACTED:secret_name]})
  end

  test "summaries are bounded" do
    long = s(String.duplicate("a", 1000))
    assert byte_size(long) < 100
    assert long =~ "(1000 bytes)"
    assert s(Enum.to_list(1..100_000)) == "[1, 2, 3, 4, 5, 6, 7, 8, …]"
    deep = Enum.reduce(1..50, :x, fn _, acc -> {acc} end)
    assert s(deep) == "{{{{…}}}}"
    wide = Map.new(1..100, fn n -> {n, Enum.to_list(1..50)} end)
    assert byte_size(s(wide)) <= 320 + 3
  end

  test "control characters stay escaped" do
    assert s("a\e[2J\n\"q\"") == ~S(<<"a\u{1b}[2J\n\"q\"">>)
    assert s(:"evil\e[31m") == ~S('evil\u{1b}[31m')
  end

  test "OTP's and Elixir's directories are not the program" do
    assert :devtrace_beam.is_excluded_dir(:code.lib_dir(:stdlib, :ebin))
    assert :devtrace_beam.is_excluded_dir(~c"/usr/lib/elixir/lib/elixir/ebin")
    assert :devtrace_beam.is_excluded_dir(~c"/home/me/.mix/archives/hex-2.0.0/hex-2.0.0/ebin")
    refute :devtrace_beam.is_excluded_dir(~c"/home/me/app/_build/dev/lib/app/ebin")
    refute :devtrace_beam.is_excluded_dir(~c"/home/me/app/_build/dev/lib/logger/ebin")
    excluded = :devtrace_beam.excluded_modules()
    for m <- [:lists, :gen_server, :erlang, :devtrace_beam, Enum, GenServer, ExUnit],
        do: assert(m in excluded, inspect(m))
    refute DevtraceBeam.Work in excluded
  end

  test "the GenServers whose state is recorded are chosen by name" do
    assert :devtrace_beam.state_choice(~c"all") == :all
    assert :devtrace_beam.state_choice(~c"") == :all
    assert :devtrace_beam.state_choice(~c"none") == :none
    assert :devtrace_beam.state_choice(~c"Cart.Server, cart_sup") == [Cart.Server, :cart_sup]
  end

  # The {M, F, Args} of the spawn that `start` makes in a process of its own (the term of the
  # tracer's spawn event, seen here by a tracer process).
  defp spawn_mfa(start) do
    me = self()
    starter = spawn(fn -> receive(do: (:go -> send(me, {:started, start.()}))) end)
    :erlang.trace(starter, true, [:procs, {:tracer, me}])
    send(starter, :go)
    assert_receive {:trace, ^starter, :spawn, _child, mfa}
    assert_receive {:started, _}
    mfa
  end

  test "a spawned process's initial call is read through OTP's proc_lib and gen wrappers" do
    sup = spawn_mfa(fn -> Supervisor.start_link([], strategy: :one_for_one) end)
    assert :devtrace_beam_tracer.initial_call(sup) == {:supervisor, :init, 1, :other}
    named_sup = spawn_mfa(fn -> Supervisor.start_link([], strategy: :one_for_one, name: :a_sup) end)
    assert :devtrace_beam_tracer.initial_call(named_sup) == {:supervisor, :init, 1, :other}
    door = spawn_mfa(fn -> :gen_statem.start_link(DevtraceBeam.Door, [1, 2], []) end)
    assert :devtrace_beam_tracer.initial_call(door) == {DevtraceBeam.Door, :init, 1, :gen_statem}
    named_door = spawn_mfa(fn -> :gen_statem.start_link({:local, :a_door}, DevtraceBeam.Door, [1], []) end)
    assert :devtrace_beam_tracer.initial_call(named_door) == {DevtraceBeam.Door, :init, 1, :gen_statem}
    cache = spawn_mfa(fn -> GenServer.start_link(DevtraceBeam.Cache, %{}, name: DevtraceBeam.Cache) end)
    assert :devtrace_beam_tracer.initial_call(cache) == {DevtraceBeam.Cache, :init, 1, :other}
    assert {Task.Supervised, _, _, :other} = :devtrace_beam_tracer.initial_call(spawn_mfa(fn -> Task.start_link(fn -> :ok end) end))
    plain = spawn_mfa(fn -> spawn(DevtraceBeam.Work, :double, [2]) end)
    assert :devtrace_beam_tracer.initial_call(plain) == {DevtraceBeam.Work, :double, 1, :other}
    assert :devtrace_beam_tracer.initial_call(:not_an_mfa) == :none
  end

  test "a monitor's DOWN and a trapped EXIT tell of the exit of the process named in them" do
    {pid, ref} = spawn_monitor(fn -> exit(:boom) end)
    assert_receive {:DOWN, ^ref, :process, ^pid, :boom} = down
    assert :devtrace_beam_tracer.exit_told(down) == pid
    Process.flag(:trap_exit, true)
    linked = spawn_link(fn -> exit(:oops) end)
    assert_receive {:EXIT, ^linked, :oops} = trapped
    Process.flag(:trap_exit, false)
    assert :devtrace_beam_tracer.exit_told(trapped) == linked
    assert :devtrace_beam_tracer.exit_told({:DOWN, ref, :port, :a_port, :closed}) == :none
    assert :devtrace_beam_tracer.exit_told({:EXIT, :not_a_pid, :x}) == :none
    assert :devtrace_beam_tracer.exit_told({:ok, pid}) == :none
  end

  # Whether the trace pattern of `mfa` is off within `tries` × 10 ms.
  defp untraced_soon(mfa, tries) do
    cond do
      :erlang.trace_info(mfa, :traced) == {:traced, false} -> true
      tries == 0 -> false
      true ->
        Process.sleep(10)
        untraced_soon(mfa, tries - 1)
    end
  end

  test "a recording started in this VM records the program's processes" do
    dir = Path.join(System.tmp_dir!(), "devtrace-beam-exunit-#{System.pid()}")
    File.mkdir_p!(dir)
    path = Path.join(dir, "vm.ring")
    on_exit(fn -> File.rm_rf!(dir) end)
    options = %{path: String.to_charlist(path), mib: 8, lossless: false, hot_calls: 1000}
    assert :ok = :devtrace_beam.start(options)
    assert {:error, :already_open} = :devtrace_beam_tracer.open(path, 8, [], [])
    assert :devtrace_beam.syntax() == :elixir
    {before, _, _, _} = :devtrace_beam_tracer.stats()
    parent = self()
    {child, ref} = spawn_monitor(fn -> send(parent, {:done, DevtraceBeam.Work.double(21)}) end)
    assert_receive {:done, 42}
    assert_receive {:DOWN, ^ref, :process, ^child, :normal}
    {later, not_kept, _, _} = :devtrace_beam_tracer.stats()
    # The child's process record, call, arguments, value, return, send and exit.
    assert later - before >= 7
    assert not_kept == 0
    assert {:ok, "DTREC\0v1" <> _} = File.open(path, [:read, :binary], &IO.binread(&1, 16))
    # A function called 1,000 times within 100 ms is hot: the runtime stops tracing it; the
    # others stay traced.
    {looper, ref} = spawn_monitor(fn -> Enum.reduce(1..5_000, 0, fn _, n -> DevtraceBeam.Work.step(n) end) end)
    assert_receive {:DOWN, ^ref, :process, ^looper, :normal}
    assert untraced_soon({DevtraceBeam.Work, :step, 1}, 100)
    assert :erlang.trace_info({DevtraceBeam.Work, :double, 1}, :traced) == {:traced, :local}
    :erlang.trace(:all, false, [:all])
  end
end
