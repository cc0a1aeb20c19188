# A checkout that asks three independent services one after another, then pays with the price
# one of them returned. Planted problem: the stock check, the price quote and the shipping
# estimate could overlap (Task.async_stream); the payment needs the quote's answer.
defmodule Svc do
  # A service process answering one kind of question after `ms` of work.
  defmacro __using__(ms: ms) do
    quote do
      use GenServer
      def start_link(_), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)
      @impl true
      def init(state), do: {:ok, state}
      @impl true
      def handle_call(request, _from, state) do
        Process.sleep(unquote(ms))
        {:reply, answer(request), state}
      end
    end
  end
end

defmodule Inventory do
  use Svc, ms: 20
  def check_stock(sku), do: GenServer.call(__MODULE__, {:stock, sku})
  def answer({:stock, _sku}), do: {:in_stock, 3}
end

defmodule Pricing do
  use Svc, ms: 30
  def quote_price(sku), do: GenServer.call(__MODULE__, {:quote, sku})
  def answer({:quote, _sku}), do: "price-4711"
end

defmodule Shipping do
  use Svc, ms: 25
  def estimate_delivery(zip), do: GenServer.call(__MODULE__, {:estimate, zip})
  def answer({:estimate, _zip}), do: {:days, 2}
end

defmodule Payment do
  use Svc, ms: 10
  def authorize(price), do: GenServer.call(__MODULE__, {:authorize, price})
  def answer({:authorize, price}), do: {:ok, price}
end

defmodule Checkout do
  def run(sku, zip) do
    t0 = System.monotonic_time(:microsecond)
    stock = Inventory.check_stock(sku)
    price = Pricing.quote_price(sku)
    days = Shipping.estimate_delivery(zip)
    three = System.monotonic_time(:microsecond) - t0
    {:ok, ^price} = Payment.authorize(price)
    {three, {stock, price, days}}
  end
end

defmodule Checkout.Main do
  def main do
    for s <- [Inventory, Pricing, Shipping, Payment], do: {:ok, _} = s.start_link([])
    {three, _} = Checkout.run("sku-9", "10115")

    # The same three calls overlapped, best of three (the first pays for loading Task's code).
    overlapped = Enum.min(for _ <- 1..3, do: overlapped())

    IO.puts(
      ~s({"three_one_after_another_ms": #{ms(three)}, ) <>
        ~s("three_overlapped_ms": #{ms(overlapped)}, "saving_ms": #{ms(three - overlapped)}})
    )
  end

  defp overlapped do
    {took, _} =
      :timer.tc(fn ->
        [
          Task.async(fn -> Inventory.check_stock("sku-9") end),
          Task.async(fn -> Pricing.quote_price("sku-9") end),
          Task.async(fn -> Shipping.estimate_delivery("10115") end)
        ]
        |> Enum.map(&Task.await/1)
      end)

    took
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

Checkout.Main.main()
