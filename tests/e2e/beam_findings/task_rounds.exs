# Rounds of tasks awaited together, written at a script's top level: each round starts eight
# tasks with `Task.async/1` and waits for all of them with `Task.await_many/2`; each task reads
# fifty keys from a cache (ETS, filled by a GenServer on a miss). The script's process takes its
# tasks' results where it waits for them: no mailbox it fell behind on. Prints its own ground
# truth.
defmodule Rounds.Cache do
  use GenServer

  def start_link, do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  def get(key) do
    case :ets.lookup(:rounds_cache, key) do
      [{^key, value}] -> value
      [] -> GenServer.call(__MODULE__, {:fill, key})
    end
  end

  @impl true
  def init(nil) do
    :ets.new(:rounds_cache, [:named_table, :public, read_concurrency: true])
    {:ok, nil}
  end

  @impl true
  def handle_call({:fill, key}, _from, state) do
    case :ets.lookup(:rounds_cache, key) do
      [{^key, value}] ->
        {:reply, value, state}

      [] ->
        Process.sleep(5)
        :ets.insert(:rounds_cache, {key, key * 2})
        {:reply, key * 2, state}
    end
  end
end

defmodule Rounds.Fetcher do
  def fetch(id) do
    Process.sleep(30)
    Enum.sum(for k <- 1..50, do: Rounds.Cache.get(rem(id * k, 20)))
  end

  def round(ids), do: ids |> Enum.map(&Task.async(fn -> fetch(&1) end)) |> Task.await_many(5_000)
end

{:ok, _} = Rounds.Cache.start_link()

ms =
  for _ <- 1..3 do
    {micros, _} = :timer.tc(fn -> Rounds.Fetcher.round(1..8) end)
    micros / 1000
  end

IO.puts(~s({"rounds": #{length(ms)}, "tasks": 24, "round_ms": #{inspect(ms)}}))
