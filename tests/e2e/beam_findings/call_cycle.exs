# Two GenServers that call each other: Orders, placing an order, asks Stock to reserve it, and
# Stock, reserving, asks Orders for the order's priority. Orders is blocked in its own call to
# Stock, so Stock's call times out (300 ms) and Stock falls back to a default priority.
# Planted problem: a call cycle, Orders → Stock → Orders, that only the timeout ends.
defmodule Orders do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, %{1 => :high}, name: __MODULE__)
  def init(s), do: {:ok, s}
  def place(id), do: GenServer.call(__MODULE__, {:place, id}, 2_000)
  def priority(id), do: GenServer.call(__MODULE__, {:priority, id}, 300)

  def handle_call({:place, id}, _from, s), do: {:reply, Stock.reserve(id), s}
  def handle_call({:priority, id}, _from, s), do: {:reply, Map.get(s, id), s}
end

defmodule Stock do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, %{}, name: __MODULE__)
  def init(s), do: {:ok, s}
  def reserve(id), do: GenServer.call(__MODULE__, {:reserve, id}, 1_000)

  def handle_call({:reserve, id}, _from, s) do
    priority =
      try do
        Orders.priority(id)
      catch
        :exit, {:timeout, _} -> :normal
      end

    {:reply, {:reserved, id, priority}, s}
  end
end

defmodule Orders.Main do
  def main do
    {:ok, _} = Supervisor.start_link([Orders, Stock], strategy: :one_for_one)
    t0 = System.monotonic_time(:microsecond)
    {:reserved, 1, priority} = Orders.place(1)
    placed = System.monotonic_time(:microsecond) - t0

    IO.puts(
      ~s({"priority": "#{priority}", "timeout_ms": 300, ) <>
        ~s("placed_ms": #{Float.round(placed / 1000, 2)}})
    )
  end
end

Orders.Main.main()
