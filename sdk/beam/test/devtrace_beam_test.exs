# ExUnit tests of devtrace's BEAM runtime, in a real VM with the real NIF (scripts/test-beam
# builds both and runs `elixir -pa <runtime ebin> sdk/beam/test/devtrace_beam_test.exs`): the
# term summaries the tracer records, which modules are the program's, and a recording started
# in this VM. (ExUnit rather than EUnit: Debian's Elixir ships ExUnit; EUnit is a package of
# its own.)
ExUnit.start()

defmodule DevtraceBeam.Work do
  # A function of "the program": this module is compiled from the script, not excluded.
  def double(n), do: n * 2
end

defmodule DevtraceBeamTest do
  use ExUnit.Case, async: false

  defp s(term), do: :devtrace_beam_tracer.summary(term, :erlang)
  defp ex(term), do: :devtrace_beam_tracer.summary(term, :elixir)

  test "Erlang's syntax" do
    assert s({:ok, 42, 1.5, :"Quoted atom", "text"}) == ~s({ok, 42, 1.5, 'Quoted atom', <<"text">>})
    assert s([1, 2, 3]) == "[1, 2, 3]"
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

  test "a recording started in this VM records the program's processes" do
    dir = Path.join(System.tmp_dir!(), "devtrace-beam-exunit-#{System.pid()}")
    File.mkdir_p!(dir)
    path = Path.join(dir, "vm.ring")
    on_exit(fn -> File.rm_rf!(dir) end)
    assert :ok = :devtrace_beam.start(%{path: String.to_charlist(path), mib: 8, lossless: false})
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
    :erlang.trace(:all, false, [:all])
  end
end
