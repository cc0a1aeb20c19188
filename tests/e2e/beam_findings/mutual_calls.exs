# Two GenServers calling each other with the same timeout, as OTP's default 5 s makes them:
# Inventory, reserving an item for a client, asks Pricing for a quote; Pricing, quoting, asks
# Inventory how many are left. Inventory is blocked in its own call to Pricing, so both calls
# time out together; the client, waiting on Inventory meanwhile, gives up at the same moment.
# Planted problem: a call cycle, Inventory → Pricing → Inventory, that only the timeout ends.
defmodule Inventory do
  use GenServer
  @timeout 400
  def start_link(_), do: GenServer.start_link(__MODULE__, %{apple: 3}, name: __MODULE__)
  def init(s), do: {:ok, s}
  def reserve(item), do: GenServer.call(__MODULE__, {:reserve, item}, @timeout)
  def stock(item), do: GenServer.call(__MODULE__, {:stock, item}, @timeout)

  def handle_call({:reserve, item}, _from, s) do
    price = Pricing.quote(item)
    {:reply, {:ok, price}, Map.update!(s, item, &(&1 - 1))}
  end

  def handle_call({:stock, item}, _from, s), do: {:reply, Map.get(s, item, 0), s}
end

defmodule Pricing do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, %{}, name: __MODULE__)
  def init(s), do: {:ok, s}
  def quote(item), do: GenServer.call(__MODULE__, {:quote, item}, 400)

  def handle_call({:quote, item}, _from, s) do
    # Scarce items cost more.
    {:reply, if(Inventory.stock(item) < 5, do: 12, else: 10), s}
  end
end

defmodule Inventory.Main do
  def main do
    Process.flag(:trap_exit, true)
    {:ok, _} = Supervisor.start_link([Inventory, Pricing], strategy: :one_for_one)
    t0 = System.monotonic_time(:microsecond)

    outcome =
      try do
        Inventory.reserve(:apple)
      catch
        :exit, {:timeout, _} -> :timed_out
      end

    waited = System.monotonic_time(:microsecond) - t0
    # Let the two servers' own timeouts end and the supervisor restart them.
    Process.sleep(100)

    IO.puts(
      ~s({"outcome": "#{outcome}", "timeout_ms": 400, ) <>
        ~s("waited_ms": #{Float.round(waited / 1000, 2)}})
    )
  end
end

Inventory.Main.main()
