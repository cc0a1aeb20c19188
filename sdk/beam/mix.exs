# devtrace's BEAM runtime as a Mix project, for a Mix project that takes it as a path dependency
# and starts recording from its config (docs/beam.md, "As a Mix dependency"):
#
#     {:devtrace_beam, path: "/path/to/devtrace/sdk/beam"}
#     config :devtrace_beam, record: true
#
# The compiler step below builds the Erlang modules of src/ and puts the tracer NIF
# (crates/devtrace-beamrecorder, Rust) into the application's priv/, under the project's
# _build. Nothing from Hex. The application description (version, start callback) is
# src/devtrace_beam.app.src, the file scripts/build-beam copies for `devtrace run`, so both ways
# load the same application.

defmodule Mix.Tasks.Compile.DevtraceBeam do
  @moduledoc """
  Builds the devtrace_beam application: compiles `src/*.erl` into its ebin/ and puts the tracer
  NIF into its `priv/devtrace_beam_nif.so`.

  The Erlang modules are compiled here rather than by Mix's Erlang compiler, which purges and
  deletes each module it compiles: in a VM that `devtrace run --record` records while it
  compiles this dependency, that would unload the tracer module the VM is tracing through.

  The NIF is the one scripts/build-beam built when it is newer than the crates' sources, else
  one built now with `cargo build --release` (into the target directory scripts/build-beam
  uses, so the two share the work), else — when cargo is missing or fails — an older one
  scripts/build-beam built, with a warning. With none of these it stops the build with what to
  install or run.
  """
  use Mix.Task.Compiler

  @nif "devtrace_beam_nif.so"
  @crate "crates/devtrace-beamrecorder"

  @impl true
  def run(_args) do
    erlang = compile_erlang()
    nif = install_nif()
    if erlang == :noop and nif == :noop, do: {:noop, []}, else: {:ok, []}
  end

  @impl true
  def clean do
    File.rm(Path.join([Mix.Project.app_path(), "priv", @nif]))
    for beam <- Path.wildcard(Path.join(Mix.Project.compile_path(), "*.beam")), do: File.rm(beam)
    :ok
  end

  defp compile_erlang do
    ebin = Mix.Project.compile_path()
    File.mkdir_p!(ebin)

    stale =
      for source <- Path.wildcard(Path.join(__DIR__, "src/*.erl")),
          Mix.Utils.stale?([source], [Path.join(ebin, Path.basename(source, ".erl") <> ".beam")]),
          do: source

    Enum.each(stale, fn source ->
      case :compile.file(to_charlist(source), [:report, :debug_info, outdir: to_charlist(ebin)]) do
        {:ok, _module} ->
          :ok

        _ ->
          Mix.raise(
            "devtrace_beam: compiling #{Path.relative_to(source, __DIR__)} failed (the errors above)"
          )
      end
    end)

    if stale == [], do: :noop, else: :ok
  end

  defp install_nif do
    checkout = Path.expand("../..", __DIR__)
    installed = Path.join([Mix.Project.app_path(), "priv", @nif])
    sources = crate_sources(checkout)

    if File.exists?(installed) and not Mix.Utils.stale?(sources, [installed]) do
      :noop
    else
      install(nif_to_install(checkout, sources), installed)
    end
  end

  # The Rust sources the NIF is built from: its crate and devtrace-recorder.
  defp crate_sources(checkout) do
    for crate <- ["devtrace-beamrecorder", "devtrace-recorder"],
        pattern <- ["Cargo.toml", "src/**/*.rs"],
        file <- Path.wildcard(Path.join([checkout, "crates", crate, pattern])),
        do: file
  end

  defp nif_to_install(checkout, sources) do
    target_dir = Path.expand(System.get_env("CARGO_TARGET_DIR") || "target", checkout)
    prebuilt = Path.join([target_dir, "beam", "devtrace_beam", "priv", @nif])

    if File.exists?(prebuilt) and not Mix.Utils.stale?(sources, [prebuilt]) do
      prebuilt
    else
      case cargo_build(checkout, target_dir) do
        {:ok, built} -> built
        {:error, why, fix} -> older_prebuilt(prebuilt, checkout, why, fix)
      end
    end
  end

  # When cargo cannot build it: the NIF scripts/build-beam built before the sources changed,
  # else the reason and the fix.
  defp older_prebuilt(prebuilt, checkout, why, fix) do
    if File.exists?(prebuilt) do
      Mix.shell().error(
        "devtrace_beam: #{why}; using the tracer NIF scripts/build-beam built (#{prebuilt}), " <>
          "older than its sources in #{@crate}: run scripts/build-beam in #{checkout} to bring it up to date"
      )

      prebuilt
    else
      Mix.raise(
        "devtrace_beam: cannot build the tracer NIF (#{@crate}): #{why}. #{fix}, " <>
          "or build devtrace's BEAM runtime once with scripts/build-beam in #{checkout}"
      )
    end
  end

  defp cargo_build(checkout, target_dir) do
    case System.find_executable("cargo") do
      nil ->
        {:error, "cargo was not found on PATH",
         "Install Rust (https://rustup.rs) and compile again"}

      cargo ->
        Mix.shell().info("devtrace_beam: building the tracer NIF with cargo (#{@crate})")
        cargo_target = Path.join(target_dir, "beamrecorder")
        manifest = Path.join([checkout, @crate, "Cargo.toml"])

        {_, status} =
          System.cmd(cargo, ["build", "--quiet", "--release", "--manifest-path", manifest],
            cd: checkout,
            env: [{"CARGO_TARGET_DIR", cargo_target}],
            into: IO.stream(:stdio, :line),
            stderr_to_stdout: true
          )

        if status == 0 do
          {:ok, Path.join([cargo_target, "release", "libdevtrace_beam_nif.so"])}
        else
          {:error, "`cargo build` failed (exit status #{status}, its output above)",
           "Fix what cargo says and compile again"}
        end
    end
  end

  defp install(nif, installed) do
    File.mkdir_p!(Path.dirname(installed))
    # Copied to a new file and renamed: a VM may have the old one loaded.
    File.cp!(nif, installed <> ".new")
    File.rename!(installed <> ".new", installed)
    :ok
  end
end

defmodule DevtraceBeam.MixProject do
  use Mix.Project

  @app_src Path.join(__DIR__, "src/devtrace_beam.app.src")
  @external_resource @app_src
  {:ok, [{:application, :devtrace_beam, app}]} = :file.consult(@app_src)
  @app app

  def project do
    [
      app: :devtrace_beam,
      version: to_string(@app[:vsn]),
      description: to_string(@app[:description]),
      language: :erlang,
      compilers: [:devtrace_beam, :app],
      deps: []
    ]
  end

  def application do
    [
      mod: @app[:mod],
      registered: @app[:registered],
      extra_applications: @app[:applications] -- [:kernel, :stdlib],
      env: @app[:env]
    ]
  end
end
