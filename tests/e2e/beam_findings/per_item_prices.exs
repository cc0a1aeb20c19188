# A price book held in an Agent, read a cart line at a time: Checkout.total/1 asks the Agent
# once a line, and the Agent's work for a line (pricing it: 2 ms) is per item, so asking for all
# the lines at once (PriceBook.prices/1) would take as long. Planted: an N+1 of calls that a
# batch would barely shorten. The program measures the loop and the batch.
defmodule PriceBook do
  use Agent

  def start_link(prices), do: Agent.start_link(fn -> prices end, name: __MODULE__)
  def price(sku), do: Agent.get(__MODULE__, fn book -> price_of(book, sku) end)
  def prices(skus), do: Agent.get(__MODULE__, fn book -> Enum.map(skus, &price_of(book, &1)) end)

  # Pricing a line: the list price, the customer's discounts, the tax (stands for 2 ms of work).
  defp price_of(book, sku) do
    Process.sleep(2)
    Map.fetch!(book, sku)
  end
end

defmodule Checkout do
  def total(cart), do: cart |> Enum.map(fn {sku, qty} -> PriceBook.price(sku) * qty end) |> Enum.sum()
  def total_batched(cart), do: cart |> Enum.map(&elem(&1, 0)) |> PriceBook.prices() |> Enum.sum()
end

defmodule Checkout.Main do
  @lines 20

  def main do
    skus = for n <- 1..@lines, do: "sku-#{n}"
    {:ok, _} = PriceBook.start_link(Map.new(skus, &{&1, 100}))
    cart = Enum.map(skus, &{&1, 1})
    {loop, total} = :timer.tc(fn -> Checkout.total(cart) end)
    {batched, ^total} = :timer.tc(fn -> Checkout.total_batched(cart) end)

    IO.puts(
      ~s({"calls": #{@lines}, "loop_ms": #{Float.round(loop / 1000, 2)}, ) <>
        ~s("batched_ms": #{Float.round(batched / 1000, 2)}})
    )
  end
end

Checkout.Main.main()
