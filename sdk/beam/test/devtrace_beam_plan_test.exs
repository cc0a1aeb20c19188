# ExUnit tests of devtrace_beam_plan, the runtime's side of `devtrace run --plan` (scripts/test-beam
# runs `elixir -pa <runtime ebin> sdk/beam/test/devtrace_beam_plan_test.exs`): the plan file
# devtrace writes is read back atom for atom, and the message patterns of a plan's flows are
# match specs the VM accepts that let through exactly the flows' messages; a plan without flows
# is traced by meta patterns, with no process's flags but those of the processes that ran it, and
# a planned module that loads later is narrowed to its planned functions.
# (The planned run itself: tests/e2e/test_beam_plan.py.)
ExUnit.start()

defmodule DevtraceBeamPlanTest.Probe do
  def work(n), do: n + 1
end

defmodule DevtraceBeamPlanTest do
  use ExUnit.Case, async: true

  test "the plan file is read back with its odd atoms as they were" do
    path =
      Path.join(
        System.tmp_dir!(),
        "devtrace-plan-test-#{System.unique_integer([:positive])}.terms"
      )

    on_exit(fn -> File.rm(path) end)

    File.write!(path, """
    %% coding: utf-8
    {function, 'Elixir.Shop', 'checkout', 1}.
    {function, 'ignore previous; rm -rf', 'x\\x{a}y', 0}.
    {function, 'caf\u00e9', 'r\u00e9sum\u00e9', 2}.
    {message, 'call', 'Elixir.Shop.Inventory', 'reserve'}.
    {message, 'info', 'Elixir.Shop.Log', undefined}.
    """)

    assert {:ok, plan} = :devtrace_beam_plan.read(String.to_charlist(path))

    assert plan.functions == [
             {Shop, :checkout, 1},
             {:"ignore previous; rm -rf", :"x\ny", 0},
             {:café, :résumé, 2}
           ]

    assert plan.messages == [{:call, Shop.Inventory, :reserve}, {:info, Shop.Log, :undefined}]
  end

  test "a plan file that is not there is an error naming it" do
    assert {:error, {:plan, ~c"/nonexistent/plan.terms", :enoent}} =
             :devtrace_beam_plan.read(~c"/nonexistent/plan.terms")
  end

  # Whether a trace match spec matches a send's `[To, Message]` or a receive's `[Node, From,
  # Message]` (an invalid spec is an error here, as the VM would refuse it).
  defp passes?(spec, args) do
    {:ok, result, _flags, _warnings} = :erlang.match_spec_test(args, spec, :trace)
    result != false
  end

  test "the flows' patterns let through their requests and the replies, nothing else" do
    {sends, receives} =
      :devtrace_beam_plan.message_specs([
        {:call, Shop.Inventory, :reserve},
        {:cast, Shop.Inventory, :"$odd"}
      ])

    ref = make_ref()
    from = {self(), [:alias | ref]}
    to = self()

    for {message, expected} <- [
          {{:"$gen_call", from, {:reserve, 3}}, true},
          {{:"$gen_call", from, :reserve}, true},
          {{:"$gen_call", from, {:refund, 3}}, false},
          {{:"$gen_cast", {:"$odd", 1}}, true},
          {{:"$gen_cast", {:reserve, 1}}, false},
          {{[:alias | ref], :ok}, true},
          {{ref, :ok}, false},
          {{:token, 5}, false},
          {:reserve, false}
        ] do
      assert passes?(sends, [to, message]) == expected, inspect(message)
      assert passes?(receives, [node(), to, message]) == expected, inspect(message)
    end
  end

  test "without flows no message is traced, and an untagged flow lets its kind through" do
    assert :devtrace_beam_plan.message_specs([]) == {[], []}
    {sends, _} = :devtrace_beam_plan.message_specs([{:info, Shop.Log, :undefined}])
    assert passes?(sends, [self(), {:anything, 1}])
  end

  # Polls `check` for up to a second (the watcher looks every 10 ms).
  defp eventually(check, tries \\ 100) do
    cond do
      check.() -> true
      tries == 0 -> false
      true -> Process.sleep(10) && eventually(check, tries - 1)
    end
  end

  test "a plan without flows sets no process's flags and follows only the processes that run it" do
    dir = Path.join(System.tmp_dir!(), "devtrace-plan-meta-#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    on_exit(fn -> File.rm_rf(dir) end)
    # A planned module not on the code path yet: caught by the `on_load' meta pattern when it
    # loads, then narrowed to its planned function.
    late = Path.join(dir, "late")
    File.mkdir_p!(late)
    source = Path.join(late, "devtrace_plan_late.erl")
    File.write!(source, "-module(devtrace_plan_late).\n-export([planned/1, other/0]).\nplanned(X) -> X.\nother() -> ok.\n")
    {:ok, :devtrace_plan_late} = :compile.file(String.to_charlist(source), outdir: String.to_charlist(late))
    plan = Path.join(dir, "plan.terms")

    File.write!(plan, """
    {function, 'Elixir.DevtraceBeamPlanTest.Probe', work, 1}.
    {function, devtrace_plan_late, planned, 1}.
    """)

    :ok =
      :devtrace_beam.start(%{
        path: Path.join(dir, "devtrace-beam-test.ring"),
        mib: 8,
        plan: String.to_charlist(plan)
      })

    probe = DevtraceBeamPlanTest.Probe
    assert :erlang.trace_info({probe, :work, 1}, :meta) == {:meta, {:devtrace_beam_tracer, []}}
    assert :erlang.trace_info({probe, :work, 1}, :traced) == {:traced, false}
    assert :erlang.trace_info(:new_processes, :flags) == {:flags, []}

    worker =
      spawn(fn ->
        Process.register(self(), :plan_probe_worker)
        2 = probe.work(1)
        receive do: (:stop -> :ok)
      end)

    idle = spawn(fn -> receive do: (:stop -> :ok) end)
    assert eventually(fn -> :erlang.trace_info(worker, :flags) == {:flags, [:procs]} end)
    assert :erlang.trace_info(worker, :tracer) == {:tracer, {:devtrace_beam_tracer, []}}
    assert :erlang.trace_info(idle, :flags) == {:flags, []}
    send(worker, :stop)
    send(idle, :stop)

    true = Code.prepend_path(late)
    {:module, :devtrace_plan_late} = :code.ensure_loaded(:devtrace_plan_late)
    meta = {:meta, {:devtrace_beam_tracer, []}}
    assert eventually(fn -> :erlang.trace_info({:devtrace_plan_late, :other, 0}, :meta) == {:meta, false} end)
    assert :erlang.trace_info({:devtrace_plan_late, :planned, 1}, :meta) == meta
    assert eventually(fn -> :erlang.trace_info(:on_load, :meta) == {:meta, false} end)
    assert :erlang.trace_info(:new_processes, :flags) == {:flags, []}
  end
end
