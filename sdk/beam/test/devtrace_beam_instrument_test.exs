# ExUnit tests of devtrace_beam_instrument (`devtrace run --record --instrument`; scripts/test-beam
# runs `elixir -pa <runtime ebin> sdk/beam/test/devtrace_beam_instrument_test.exs`): a module
# compiled with debug info is recompiled with the probes in each clause, send and receive, and
# behaves exactly as before — return values, the clause a guard picks, an exception re-raised
# with its class, reason and stack trace, a receive's timeout, the messages as sent, a loop's
# tail calls (its stack stays the size it was); its anonymous functions are probed under the
# names the compiler gives them, and behave as before too; the compiler runs in no process a
# recording would trace. With no recorder open the probes record nothing, so the module runs
# here as a program's would.
# (What a recording of an instrumented program holds: tests/e2e/test_beam.py.)
ExUnit.start()

defmodule DevtraceBeamInstrumentTest do
  use ExUnit.Case, async: false

  @source """
  -module(dt_instrumented).
  -export([grade/1, fail/1, relay/2, wait/1, post/2, count/2, server/1, funs/1, countdown/1]).
  -export([fun_fails/1, spin/1, all_small/1, bad_left/1]).

  grade(N) when N >= 10 -> high;
  grade(_) -> low.

  fail(Reason) -> erlang:error(Reason).

  relay(To, Message) ->
      To ! {relayed, Message},
      erlang:send(To, {sent, Message}, []),
      ok.

  wait(Ms) ->
      receive
          {relayed, M} -> {got, M};
          {sent, M} when is_integer(M) -> {int, M}
      after Ms -> timeout
      end.

  post(To, Message) ->
      F = fun() -> To ! {from_fun, Message} end,
      F().

  count(0, Acc) -> {Acc, element(2, process_info(self(), stack_size))};
  count(N, Acc) -> count(N - 1, Acc + 1).

  server(Count) ->
      receive
          {add, N} -> ?MODULE:server(Count + N);
          {get, From} -> From ! {count, Count}, server(Count);
          stop -> Count
      end.

  funs(L) ->
      Offset = length(L),
      Shifted = lists:map(fun(X) -> X + Offset end, L),
      Adders = [fun(Y) -> fun(Z) -> Y + Z end end || _ <- L],
      {Shifted, [(A(1))(2) || A <- Adders], [X * 2 || X <- L]}.

  countdown(N) ->
      Loop = fun Loop(0, Acc) -> {Acc, element(2, process_info(self(), stack_size))};
                 Loop(K, Acc) -> Loop(K - 1, Acc + 1)
             end,
      Loop(N, 0).

  fun_fails(Reason) ->
      F = fun(R) when is_atom(R) -> erlang:error(R); (R) -> {not_an_atom, R} end,
      lists:map(F, [Reason]).

  spin(N) ->
      put(stack, element(2, process_info(self(), stack_size))),
      N =< 0 orelse spin(N - 1).

  all_small([]) -> true;
  all_small([H | T]) -> H < 10 andalso all_small(T).

  bad_left(X) -> X orelse bad_left(true).
  """

  setup_all do
    dir = Path.join(System.tmp_dir!(), "devtrace-instrument-#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    source = Path.join(dir, "dt_instrumented.erl")
    File.write!(source, @source)
    {:ok, :dt_instrumented} = :compile.file(String.to_charlist(source), [:debug_info, outdir: String.to_charlist(dir)])
    File.write!(Path.join(dir, "dt_bare.erl"), "-module(dt_bare).\n-export([one/0]).\none() -> 1.\n")
    {:ok, :dt_bare} = :compile.file(String.to_charlist(Path.join(dir, "dt_bare.erl")), outdir: String.to_charlist(dir))
    true = :code.add_patha(String.to_charlist(dir))
    cache = Path.join(dir, "cache")
    System.put_env("DEVTRACE_BEAM_CACHE", cache)
    on_exit(fn -> File.rm_rf!(dir) end)
    {:ok, dir: dir, cache: cache}
  end

  # The remote calls of devtrace_beam_tracer in `forms` (Erlang's abstract format), by probe name.
  defp probes(forms), do: forms |> walk([]) |> Enum.frequencies()

  defp walk({:call, _, {:remote, _, {:atom, _, :devtrace_beam_tracer}, {:atom, _, name}}, args}, acc),
    do: walk(args, [name | acc])

  defp walk(tuple, acc) when is_tuple(tuple), do: walk(Tuple.to_list(tuple), acc)
  defp walk(list, acc) when is_list(list), do: Enum.reduce(list, acc, &walk/2)
  defp walk(_, acc), do: acc

  defp forms_of(module, what) do
    {:ok, {^module, [debug_info: {:debug_info_v1, backend, data}]}} =
      :beam_lib.chunks(:code.which(module), [:debug_info])

    {:ok, forms} = backend.debug_info(:erlang_v1, module, data, [])
    :devtrace_beam_instrument.forms(module, forms, what)
  end

  test "each clause records its call and its end, each send its message, each receive clause the message it matched" do
    counts = probes(forms_of(:dt_instrumented, :calls))
    # 16 clauses of named functions (grade's two, fail, relay, wait, post, count's two, server,
    # funs, countdown, fun_fails, spin, all_small's two, bad_left; module_info is the
    # compiler's) and 8 of anonymous ones (post's, funs' three, countdown's two, fun_fails' two)
    assert counts[:enter] == 24
    assert counts[:leave] == 24
    assert counts[:raised] == 24
    # the calls of the module's own functions at an end: count/2's, server/1's two (one
    # through ?MODULE), countdown's named fun's call of itself, spin's, all_small's and
    # bad_left's on the right of `orelse'/`andalso'; fail/1's erlang:error/1 is not the
    # module's and stays inside
    assert counts[:tail] == 7
    # relay's `!` and erlang:send/3, post's `!` inside its fun, server's reply
    assert counts[:sent] == 4
    # wait's two clauses and its `after' (a timeout, as the VM's trace reports it), server's three
    assert counts[:received] == 6
  end

  test "a send's probe is told where the message goes when that is a variable or a name", %{dir: dir} do
    # A call request's server (gen:call sends to a pid in a variable): who a call was made to,
    # even when the request is never taken. Any other destination is not evaluated twice.
    source = Path.join(dir, "dt_sends.erl")

    File.write!(source, """
    -module(dt_sends).
    -export([to_var/1, to_name/0, to_call/0, with_send/1]).
    to_var(P) -> P ! hi.
    to_name() -> logger ! hi.
    to_call() -> hd([self()]) ! hi.
    with_send(P) -> erlang:send(P, hi, [noconnect]).
    """)

    {:ok, :dt_sends} = :compile.file(String.to_charlist(source), [:debug_info, outdir: String.to_charlist(dir)])
    told = forms_of(:dt_sends, :calls) |> sends([]) |> Enum.frequencies()
    assert told == %{2 => 3, 1 => 1}
  end

  # The arities of the `sent` probes in `forms`.
  defp sends({:call, _, {:remote, _, {:atom, _, :devtrace_beam_tracer}, {:atom, _, :sent}}, args}, acc),
    do: sends(args, [length(args) | acc])

  defp sends(tuple, acc) when is_tuple(tuple), do: sends(Tuple.to_list(tuple), acc)
  defp sends(list, acc) when is_list(list), do: Enum.reduce(list, acc, &sends/2)
  defp sends(_, acc), do: acc

  test "messages only: OTP's gen modules keep their calls unprobed" do
    counts = probes(forms_of(:dt_instrumented, :messages))
    assert Enum.all?([:enter, :leave, :raised, :tail], &(counts[&1] == nil))
    assert counts[:sent] == 4 and counts[:received] == 6
  end

  test "an instrumented module behaves as it did" do
    # A variable module: the compiler of this file does not look for it.
    m = :dt_instrumented
    assert :ok = :devtrace_beam_instrument.module(m, :calls)
    assert probes(forms_of(:dt_instrumented, :calls))[:enter] == 24

    assert m.grade(12) == :high
    assert m.grade(3) == :low

    {class, reason, stack} =
      try do
        m.fail({:bad, "input"})
      catch
        class, reason -> {class, reason, __STACKTRACE__}
      end

    assert {class, reason} == {:error, {:bad, "input"}}
    assert [{:dt_instrumented, :fail, 1, _} | _] = stack

    assert m.relay(self(), 7) == :ok
    assert_received {:relayed, 7}
    assert_received {:sent, 7}

    send(self(), {:sent, 5})
    assert m.wait(100) == {:int, 5}
    send(self(), {:relayed, :x})
    assert m.wait(100) == {:got, :x}
    send(self(), {:sent, :not_an_integer})
    assert m.wait(10) == :timeout
    assert_received {:sent, :not_an_integer}

    assert m.post(self(), :hello) == {:from_fun, :hello}
    assert_received {:from_fun, :hello}

    server = spawn(fn -> send(self(), :unused); m.server(0) end)
    for n <- 1..1000, do: send(server, {:add, n})
    send(server, {:get, self()})
    assert_receive {:count, 500_500}, 5000

    assert m.funs([1, 2]) == {[3, 4], [3, 3], [2, 4]}
    assert catch_error(m.fun_fails(:x_y)) == :x_y
    assert m.fun_fails("text") == [{:not_an_atom, "text"}]

    {class, reason, stack} =
      try do
        m.fun_fails(:boom)
      catch
        class, reason -> {class, reason, __STACKTRACE__}
      end

    assert {class, reason} == {:error, :boom}
    assert [{:dt_instrumented, :"-fun_fails/1-fun-0-", 1, _} | _] = stack

    # `orelse' and `andalso' with a call of the module's own on the right, as before.
    assert m.spin(3) == true
    assert m.all_small([1, 2]) == true
    assert m.all_small([1, 20, 3]) == false
    assert m.bad_left(false) == true
    assert catch_error(m.bad_left(1)) == {:badarg, 1}
  end

  # The names in the enter probes of `forms`, as the compiler's functions are named.
  defp entered(forms), do: forms |> entered([]) |> Enum.uniq() |> Enum.sort()

  defp entered({:call, _, {:remote, _, {:atom, _, :devtrace_beam_tracer}, {:atom, _, :enter}}, [_, {:atom, _, name}, _]}, acc),
    do: [name | acc]

  defp entered(tuple, acc) when is_tuple(tuple), do: entered(Tuple.to_list(tuple), acc)
  defp entered(list, acc) when is_list(list), do: Enum.reduce(list, acc, &entered/2)
  defp entered(_, acc), do: acc

  test "an anonymous function is probed under the name the compiler gives its function" do
    # The module as compiled without probes: its functions, the compiler's among them.
    {:ok, {_, [locals: locals]}} = :beam_lib.chunks(:code.which(:dt_instrumented), [:locals])
    lifted = for {name, _} <- locals, match?(~c"-" ++ _, Atom.to_charlist(name)), into: MapSet.new(), do: name
    names = entered(forms_of(:dt_instrumented, :calls))
    # Every fun but post/2's, which the compiler inlines (it is applied where it is made).
    funs = for name <- names, match?(~c"-" ++ _, Atom.to_charlist(name)), do: name
    assert :"-post/2-fun-0-" in funs
    assert Enum.sort(funs -- [:"-post/2-fun-0-"]) ==
             Enum.sort(Enum.reject(lifted, &String.contains?(Atom.to_string(&1), "lc$^")))
    assert :"-countdown/1-Loop/2-0-" in funs
    refute Enum.any?(names, &String.starts_with?(Atom.to_string(&1), "Devtrace@"))
  end

  test "a named fun's loop stays a tail call: its stack does not grow" do
    m = :dt_instrumented
    assert :ok = :devtrace_beam_instrument.module(m, :calls)
    {10, shallow} = m.countdown(10)
    {100_000, deep} = m.countdown(100_000)
    assert deep == shallow, inspect({shallow, deep})
  end

  test "a loop on the right of `orelse' stays a tail call: its stack does not grow" do
    m = :dt_instrumented
    assert :ok = :devtrace_beam_instrument.module(m, :calls)
    true = m.spin(10)
    shallow = Process.get(:stack)
    true = m.spin(100_000)
    assert Process.get(:stack) == shallow, inspect({shallow, Process.get(:stack)})
  end

  test "a loop at the end of a clause stays a tail call: its stack does not grow" do
    m = :dt_instrumented
    assert :ok = :devtrace_beam_instrument.module(m, :calls)
    {10, shallow} = m.count(10, 0)
    {100_000, deep} = m.count(100_000, 0)
    # Wrapped in a `try' each, the 100,000 calls would hold ≈ 500,000 words of stack.
    assert deep == shallow, inspect({shallow, deep})
  end

  test "an instrumented module is kept in the cache, under a key of its file's bytes", %{dir: dir, cache: cache} do
    source = Path.join(dir, "dt_cached.erl")
    compile = fn text ->
      File.write!(source, "-module(dt_cached).\n-export([grade/1]).\n" <> text)
      {:ok, :dt_cached} = :compile.file(String.to_charlist(source), [:debug_info, outdir: String.to_charlist(dir)])
    end

    m = :dt_cached
    entries = fn -> cache |> File.ls!() |> length() end
    before = if File.exists?(cache), do: entries.(), else: 0
    compile.("grade(N) when N >= 10 -> high;\ngrade(_) -> low.\n")
    assert :ok = :devtrace_beam_instrument.module(m, :calls)
    assert :ok = :devtrace_beam_instrument.module(m, :messages)
    assert :ok = :devtrace_beam_instrument.module(m, :calls)
    # One entry for each way it was instrumented; the third call loaded the first's.
    assert entries.() == before + 2
    assert m.grade(12) == :high

    # The same module changed is another entry, and runs as changed.
    compile.("grade(N) when N >= 10 -> high;\ngrade(_) -> lower.\n")
    assert :ok = :devtrace_beam_instrument.module(m, :calls)
    assert entries.() == before + 3
    assert m.grade(1) == :lower
  end

  test "the probes are compiled in no process a recording traces", %{dir: dir} do
    # A recording traces every process started after it began: a compiler run in one had its
    # every call recorded, and a first `--instrument` run took ten times as long.
    fresh = Path.join(dir, "fresh")
    File.mkdir_p!(fresh)

    for m <- [:dt_alone, :dt_prepared] do
      File.write!(Path.join(fresh, "#{m}.erl"), "-module(#{m}).\n-export([one/0]).\none() -> 1.\n")
      {:ok, ^m} = :compile.file(String.to_charlist(Path.join(fresh, "#{m}.erl")), [:debug_info, outdir: String.to_charlist(fresh)])
    end

    true = :code.add_patha(String.to_charlist(fresh))
    :erlang.trace_pattern({:compile, :_, :_}, true, [:local])
    :erlang.trace(:new_processes, true, [:call, {:tracer, self()}])

    try do
      assert :ok = :devtrace_beam_instrument.module(:dt_alone, :calls)
      assert :ok = :devtrace_beam_instrument.prepare([String.to_charlist(fresh)], :sets.from_list([:dt_alone]))
    after
      :erlang.trace(:new_processes, false, [:call])
      :erlang.trace_pattern({:compile, :_, :_}, false, [:local])
    end

    ref = :erlang.trace_delivered(:all)
    assert_receive {:trace_delivered, :all, ^ref}
    refute_received {:trace, _, :call, {:compile, _, _}}
    assert :ok = :devtrace_beam_instrument.module(:dt_prepared, :calls), "prepared into the cache"
  end

  test "a module without debug info, or compiled in memory, is refused with the reason" do
    bare = :dt_bare
    assert :devtrace_beam_instrument.module(bare, :calls) == {:error, :no_debug_info}
    assert bare.one() == 1

    assert {:error, {:no_beam_file, _}} =
             :devtrace_beam_instrument.module(__MODULE__, :calls)
  end

  test "a module compiled anew is instrumented from its file only once the file holds its code", %{dir: dir} do
    # As Elixir's compiler does: the new code loaded first, its file written after.
    source = Path.join(dir, "dt_renewed.erl")
    beam = Path.join(dir, "dt_renewed.beam")
    write = fn text -> File.write!(source, "-module(dt_renewed).\n-export([grade/1]).\ngrade(_) -> #{text}.\n") end
    write.("old")
    {:ok, :dt_renewed} = :compile.file(String.to_charlist(source), [:debug_info, outdir: String.to_charlist(dir)])
    m = :dt_renewed
    assert :ok = :devtrace_beam_instrument.module(m, :calls)
    write.("new")
    {:ok, ^m, binary} = :compile.file(String.to_charlist(source), [:debug_info, :binary])
    {:module, ^m} = :code.load_binary(m, String.to_charlist(beam), binary)

    assert :devtrace_beam_instrument.module(m, :calls) == {:error, :not_written_yet}
    assert m.grade(1) == :new, "the old file's code was loaded in place of the new"
    File.write!(beam, binary)
    assert :ok = :devtrace_beam_instrument.module(m, :calls)
    assert m.grade(1) == :new
    assert {:devtrace_probes, [:calls]} in m.module_info(:attributes)
  end
end
