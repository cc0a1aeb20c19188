# An order service places an order by reserving stock in the warehouse; the warehouse, to
# decide which order goes first, asks the order service for the customer's tier. Both calls
# wait with no timeout (`:infinity`), and each server makes its call from inside its own
# `handle_call`: Orders waits for Warehouse, which waits for Orders — a deadlock, and the
# program hangs until someone stops it (the test presses Ctrl-C twice in a terminal). Before
# the first call it prints its ground truth: the call that closes the cycle, the server it
# waits for, and the call that server is stuck in.
defmodule Shop.Orders do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, %{tiers: %{7 => :gold}}, name: __MODULE__)
  def place(customer, sku), do: GenServer.call(__MODULE__, {:place, customer, sku}, :infinity)
  def tier(customer), do: GenServer.call(__MODULE__, {:tier, customer}, :infinity)

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:place, customer, sku}, _from, state),
    do: {:reply, Shop.Warehouse.reserve(customer, sku), state}

  def handle_call({:tier, customer}, _from, state),
    do: {:reply, Map.get(state.tiers, customer, :standard), state}
end

defmodule Shop.Warehouse do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, %{stock: %{"A1" => 3}}, name: __MODULE__)
  def reserve(customer, sku), do: GenServer.call(__MODULE__, {:reserve, customer, sku}, :infinity)

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:reserve, customer, sku}, _from, state) do
    tier = Shop.Orders.tier(customer)
    {:reply, {:reserved, sku, tier}, update_in(state.stock[sku], &(&1 - 1))}
  end
end

defmodule Shop.Main do
  def main do
    {:ok, _} = Shop.Orders.start_link([])
    {:ok, _} = Shop.Warehouse.start_link([])

    IO.puts(~s({"closing_call": "Shop.Orders.tier/1", "server": "Shop.Orders", "stuck_in": "Shop.Warehouse.reserve/2", "caller": "Shop.Warehouse", "client_call": "Shop.Orders.place/2"}))

    Shop.Orders.place(7, "A1")
  end
end

Shop.Main.main()
