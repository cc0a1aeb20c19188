# The best price for an item, asked of three suppliers the way Elixir code asks a list of
# things: `Enum.map` over the suppliers with an anonymous function (a `for` comprehension
# compiles to the same), each a GenServer.call to one supplier's server. Planted problem: the
# three calls run one after another where `Task.async_stream` would overlap them; no call needs
# another's answer.
defmodule Supplier do
  use GenServer
  def start_link({name, ms}), do: GenServer.start_link(__MODULE__, ms, name: name)
  def quote_price(name, sku), do: GenServer.call(name, {:quote, sku})
  @impl true
  def init(ms), do: {:ok, ms}
  @impl true
  def handle_call({:quote, sku}, _from, ms) do
    Process.sleep(ms)
    {:reply, {:ok, rem(:erlang.phash2({sku, ms}), 90) + 10}, ms}
  end
end

defmodule Quotes do
  @suppliers [acme: 20, globex: 30, initech: 25]

  def best(sku) do
    t0 = System.monotonic_time(:microsecond)
    prices = Enum.map(Keyword.keys(@suppliers), fn name -> Supplier.quote_price(name, sku) end)
    {System.monotonic_time(:microsecond) - t0, Enum.min(prices)}
  end

  def start, do: for({name, ms} <- @suppliers, do: {:ok, _} = Supplier.start_link({name, ms}))

  def overlapped(sku) do
    {took, _} =
      :timer.tc(fn ->
        Keyword.keys(@suppliers)
        |> Task.async_stream(fn name -> Supplier.quote_price(name, sku) end,
          max_concurrency: length(@suppliers)
        )
        |> Enum.to_list()
      end)

    took
  end
end

defmodule Quotes.Main do
  def main do
    Quotes.start()
    {one_after_another, best} = Quotes.best("sku-9")
    # The same three calls overlapped, best of three (the first pays for loading Task's code).
    overlapped = Enum.min(for _ <- 1..3, do: Quotes.overlapped("sku-9"))

    IO.puts(
      ~s({"best": "#{inspect(best)}", "one_after_another_ms": #{ms(one_after_another)}, ) <>
        ~s("overlapped_ms": #{ms(overlapped)}, "saving_ms": #{ms(one_after_another - overlapped)}})
    )
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

Quotes.Main.main()
