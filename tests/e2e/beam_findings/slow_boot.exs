# An application's supervisor starting its servers, three of which load their data in init/1
# (30 ms each), and a fourth whose init/1 asks one of them for a rate before its own load.
# `Supervisor.start_link/2` starts each child only when the one before has returned from
# init/1, so the boot is the loads one after another. Planted problem: the three independent
# loads run in turn (sequential_work: do them in handle_continue/2), the fourth held out as
# it needs "Shop.Rates". Prints its own ground truth: each init/1's time as it measured it.
defmodule Shop.Loader do
  # Runs `load` and notes how long it took under `name` (the program's ground truth).
  def timed(name, load) do
    {took, state} = :timer.tc(load)
    :ets.insert(:boot_times, {name, took})
    state
  end
end

defmodule Shop.Rates do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)

  @impl true
  def init(:ok), do: {:ok, Shop.Loader.timed(:rates, fn -> Process.sleep(30) && %{eur: 1.08} end)}

  @impl true
  def handle_call(:eur, _from, rates), do: {:reply, rates.eur, rates}
end

defmodule Shop.Regions do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)

  @impl true
  def init(:ok), do: {:ok, Shop.Loader.timed(:regions, fn -> Process.sleep(30) && [:eu, :us] end)}
end

defmodule Shop.Catalog do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)

  @impl true
  def init(:ok), do: {:ok, Shop.Loader.timed(:catalog, fn -> Process.sleep(30) && %{} end)}
end

defmodule Shop.Prices do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)

  @impl true
  def init(:ok) do
    eur = GenServer.call(Shop.Rates, :eur)
    {:ok, Shop.Loader.timed(:prices, fn -> Process.sleep(20) && %{eur: eur} end)}
  end
end

defmodule Shop.Main do
  def main do
    :ets.new(:boot_times, [:named_table, :public])
    children = [Shop.Rates, Shop.Regions, Shop.Catalog, Shop.Prices]
    {:ok, _} = Supervisor.start_link(children, strategy: :one_for_one)
    times = Map.new(:ets.tab2list(:boot_times), fn {name, us} -> {name, us / 1000} end)
    independent = [times.rates, times.regions, times.catalog]
    saving = Enum.sum(independent) - Enum.max(independent)
    IO.puts(~s({"starts": 3, "held_out": 1, "saving_ms": #{Float.round(saving, 2)}}))
  end
end

Shop.Main.main()
