# The price of each cart line asked of the catalogue one call at a time, where one call for all
# of them would do. Planted problem: an N+1 of calls to "Catalog.Server" (25 calls of ~2 ms).
defmodule Catalog.Server do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, %{}, name: __MODULE__)
  def get_price(sku), do: GenServer.call(__MODULE__, {:price, sku})
  def get_prices(skus), do: GenServer.call(__MODULE__, {:prices, skus})

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  # Each request pays a fixed cost (a lookup in a remote price list), whatever it asks for.
  def handle_call({:price, sku}, _from, state) do
    Process.sleep(2)
    {:reply, price_of(sku), state}
  end

  def handle_call({:prices, skus}, _from, state) do
    Process.sleep(2)
    {:reply, Enum.map(skus, &price_of/1), state}
  end

  defp price_of(sku), do: rem(:erlang.phash2(sku), 900) + 100
end

defmodule Cart do
  def total(skus), do: skus |> Enum.map(&Catalog.Server.get_price/1) |> Enum.sum()
  def total_batched(skus), do: skus |> Catalog.Server.get_prices() |> Enum.sum()
end

defmodule Cart.Main do
  @lines 25

  def main do
    {:ok, _} = Catalog.Server.start_link([])
    skus = for n <- 1..@lines, do: "sku-#{n}"
    {loop, total} = :timer.tc(fn -> Cart.total(skus) end)
    {batched, ^total} = :timer.tc(fn -> Cart.total_batched(skus) end)

    IO.puts(
      ~s({"calls": #{@lines}, "loop_ms": #{Float.round(loop / 1000, 2)}, ) <>
        ~s("batched_ms": #{Float.round(batched / 1000, 2)}, ) <>
        ~s("saving_ms": #{Float.round((loop - batched) / 1000, 2)}})
    )
  end
end

Cart.Main.main()
