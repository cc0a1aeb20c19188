# One GenServer per SKU, each reached through a Registry (`{:via, Registry, …}`) and started
# under a DynamicSupervisor: the process per key is already there. Forty orders come in at
# once, thirty of them for one SKU. Planted problem: that SKU's process serialises its callers
# (each reservation takes ~8 ms of its time) — a hot key, which more processes per key cannot
# spread. Prints its own ground truth.
defmodule Inventory.Item do
  use GenServer

  def start_link(sku), do: GenServer.start_link(__MODULE__, sku, name: via(sku))
  defp via(sku), do: {:via, Registry, {Inventory.Registry, sku}}

  # Replies with how long the item's process worked on this request (the ground truth).
  def reserve(sku, quantity), do: GenServer.call(via(sku), {:reserve, quantity})

  @impl true
  def init(sku), do: {:ok, %{sku: sku, stock: 1_000, reserved: 0}}

  @impl true
  def handle_call({:reserve, quantity}, _from, state) do
    # The slow part: the warehouse system checked while every other caller of this SKU waits.
    {worked, :ok} = :timer.tc(fn -> Process.sleep(8) end)
    {:reply, worked, %{state | stock: state.stock - quantity, reserved: state.reserved + quantity}}
  end
end

defmodule Inventory.Main do
  @hot "hot-sku"
  @others for n <- 1..9, do: "sku-#{n}"

  def main do
    {:ok, _} = Registry.start_link(keys: :unique, name: Inventory.Registry)
    {:ok, _} = DynamicSupervisor.start_link(strategy: :one_for_one, name: Inventory.Items)
    for sku <- [@hot | @others], do: {:ok, _} = DynamicSupervisor.start_child(Inventory.Items, {Inventory.Item, sku})

    # Thirty orders for the hot SKU, ten spread over the others, all at once. Each order: how
    # long its call took, and how much of it the item's process spent on it.
    orders = List.duplicate(@hot, 30) ++ @others ++ [hd(@others)]
    tasks = for sku <- orders, do: {sku, Task.async(fn -> :timer.tc(fn -> Inventory.Item.reserve(sku, 1) end) end)}
    calls = for {sku, task} <- tasks, do: {sku, Task.await(task)}
    queued = for {@hot, {took, worked}} <- calls, do: took - worked

    IO.puts(
      ~s({"hot": "#{@hot}", "processes": #{length(@others) + 1}, "hot_calls": #{length(queued)}, ) <>
        ~s("calls": #{length(calls)}, "max_queued_ms": #{ms(Enum.max(queued))}})
    )
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

Inventory.Main.main()
