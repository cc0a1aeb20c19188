# An unnamed :one_for_all supervisor over a store, a parser and a cache: the parser crashes on
# its bad configuration each time it starts, and the supervisor starts all three again each
# time, until it gives up. Planted problem: "Ingest.Parser" in a crash/restart loop (4 crashes,
# ArgumentError); its siblings, stopped and started with it, are in no loop.
defmodule Ingest.Store do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)
  @impl true
  def init(:ok), do: {:ok, %{}}
end

defmodule Ingest.Parser do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, "port=abc", name: __MODULE__)

  @impl true
  def init(config) do
    :ets.insert(:ingest_lives, {System.monotonic_time(:microsecond)})
    Process.send_after(self(), :load, 10)
    {:ok, config}
  end

  @impl true
  def handle_info(:load, config) do
    :ets.insert(:ingest_crashes, {System.monotonic_time(:microsecond)})
    [_, port] = String.split(config, "=")
    {:noreply, String.to_integer(port)}
  end
end

defmodule Ingest.Cache do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)
  @impl true
  def init(:ok), do: {:ok, []}
end

defmodule Ingest.Main do
  def main do
    # When each parser started and when each crashed: the loop's ground truth.
    :ets.new(:ingest_lives, [:named_table, :public, :ordered_set])
    :ets.new(:ingest_crashes, [:named_table, :public, :ordered_set])
    Process.flag(:trap_exit, true)
    children = [Ingest.Store, Ingest.Parser, Ingest.Cache]
    {:ok, sup} = Supervisor.start_link(children, strategy: :one_for_all, max_restarts: 3, max_seconds: 5)

    receive do
      {:EXIT, ^sup, _reason} -> :gave_up
    end

    crashes = :ets.tab2list(:ingest_crashes)
    looped = (:ets.last(:ingest_crashes) - :ets.first(:ingest_lives)) / 1000

    IO.puts(
      ~s({"crashes": #{length(crashes)}, "reason": "ArgumentError", ) <>
        ~s("loop_ms": #{Float.round(looped, 2)}})
    )
  end
end

Ingest.Main.main()
