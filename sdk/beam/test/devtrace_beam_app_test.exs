# ExUnit tests of the devtrace_beam application's start (src/devtrace_beam_app.erl), which records
# a VM when a project that takes the runtime as a dependency says so in its config. In a real VM
# with the real NIF, a VM of their own (scripts/test-beam runs `elixir -pa <runtime ebin>
# sdk/beam/test/devtrace_beam_app_test.exs`): the recorder opens once per VM, so these tests run
# in the order written (seed 0), from "nothing recorded" to "recording".
ExUnit.start(seed: 0)
# (Stopping and starting the application is the tests' business, not news.)
Logger.configure(level: :warning)

defmodule DevtraceBeamApp.Work do
  # A function of "the program" (compiled from this script: not excluded).
  def triple(n), do: n * 3
end

defmodule DevtraceBeamAppTest do
  use ExUnit.Case, async: false
  import ExUnit.CaptureIO

  @pid List.to_string(:os.getpid())

  setup do
    dir =
      Path.join(
        System.tmp_dir!(),
        "devtrace-beam-app-#{@pid}-#{System.unique_integer([:positive])}"
      )

    File.mkdir_p!(dir)
    on_exit(fn -> File.rm_rf!(dir) end)
    Application.stop(:devtrace_beam)

    for {key, _} <- Application.get_all_env(:devtrace_beam),
        do: Application.delete_env(:devtrace_beam, key)

    {:ok, dir: dir}
  end

  defp events, do: elem(:devtrace_beam_tracer.stats(), 0)

  # Starts the application with `env` as its config; what it wrote on standard error.
  defp start_app(env) do
    Application.stop(:devtrace_beam)
    for {key, value} <- env, do: Application.put_env(:devtrace_beam, key, value)

    capture_io(:stderr, fn -> assert {:ok, _} = Application.ensure_all_started(:devtrace_beam) end)
  end

  test "the config's options become the recorder's, in the VM's ring file of the directory given" do
    assert :devtrace_beam_app.recording([], false) == :none
    assert :devtrace_beam_app.recording([record: false, dir: "/x"], false) == :none

    assert :devtrace_beam_app.recording(
             [
               record: true,
               dir: "/data/rings",
               mib: 8,
               values: false,
               state: [Cart.Server],
               seconds: 5,
               other: 1
             ],
             false
           ) ==
             {:record,
              %{
                path: ~c"/data/rings/devtrace-beam-#{@pid}.ring",
                lossless: false,
                mib: 8,
                values: false,
                state: [Cart.Server],
                seconds: 5
              }}

    # A binary directory (Elixir's strings) is a path too.
    assert {:record, %{path: path}} =
             :devtrace_beam_app.recording([record: true, dir: "/data/ü"], false)

    assert List.to_string(path) == "/data/ü/devtrace-beam-#{@pid}.ring"
  end

  test "without a directory, the ring file goes into the system's temporary directory" do
    tmpdir = System.get_env("TMPDIR")

    on_exit(fn ->
      if tmpdir, do: System.put_env("TMPDIR", tmpdir), else: System.delete_env("TMPDIR")
    end)

    System.put_env("TMPDIR", "/var/tmp/mine")

    assert {:record, %{path: ~c"/var/tmp/mine/devtrace-beam-" ++ _}} =
             :devtrace_beam_app.recording([record: true], false)

    System.delete_env("TMPDIR")

    assert {:record, %{path: ~c"/tmp/devtrace-beam-" ++ _}} =
             :devtrace_beam_app.recording([record: true], false)
  end

  test "under `devtrace run --record` (DEVTRACE_BEAM_DIR set) the config records nothing itself" do
    assert :devtrace_beam_app.recording([record: true], ~c"/tmp/devtrace-beam-1-2") == :none
    assert {:record, _} = :devtrace_beam_app.recording([record: true], ~c"")
  end

  test "started without `record: true`, the application records nothing", %{dir: dir} do
    assert start_app(dir: dir) == ""
    assert start_app(record: false, dir: dir) == ""
    assert File.ls!(dir) == []
    assert DevtraceBeamApp.Work.triple(2) == 6
    assert events() == 0, "the recorder is not open"
  end

  test "started with `record: true` while DEVTRACE_BEAM_DIR is set, it leaves recording to devtrace run",
       %{dir: dir} do
    System.put_env("DEVTRACE_BEAM_DIR", dir)
    on_exit(fn -> System.delete_env("DEVTRACE_BEAM_DIR") end)
    assert start_app(record: true, dir: dir) == ""
    assert File.ls!(dir) == []
    assert events() == 0
  end

  test "started with `record: true`, it records the program into its ring file", %{dir: dir} do
    # The directory is made when it is not there.
    dir = Path.join(dir, "rings")
    assert start_app(record: true, dir: dir, mib: 8) == ""
    ring = Path.join(dir, "devtrace-beam-#{@pid}.ring")
    assert File.ls!(dir) == [Path.basename(ring)]
    assert {:ok, "DTREC\0v1" <> _} = File.open(ring, [:read, :binary], &IO.binread(&1, 16))

    assert File.stat!(ring).size in (7 * 1024 * 1024)..(8 * 1024 * 1024),
           "`mib: 8` sizes the file"

    before = events()
    parent = self()
    {child, ref} = spawn_monitor(fn -> send(parent, {:done, DevtraceBeamApp.Work.triple(14)}) end)
    assert_receive {:done, 42}
    assert_receive {:DOWN, ^ref, :process, ^child, :normal}
    # The child's process record, call, arguments, value, return, send and exit.
    assert events() - before >= 7

    # Started again (a second `Application.start` in the VM), it finds the recorder open and
    # says nothing: the VM records already.
    Application.stop(:devtrace_beam)
    assert start_app(record: true, dir: dir) == ""
    assert File.ls!(dir) == [Path.basename(ring)]
    :erlang.trace(:all, false, [:all])
  end
end
