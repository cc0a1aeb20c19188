# Task.async_stream with a timeout: a price page asks three shops at once, each task calling
# its shop's GenServer; one shop takes 400 ms, the stream's timeout is 150 ms, so the stream
# kills the tasks still running and exits the caller, which catches the exit and shows the page
# without prices. Planted problem: twice, the stream's await of the slow shop's task times out
# after 150 ms; meanwhile the task was waiting for "slow_shop", which was running its
# handle_call.
defmodule Shop do
  use GenServer
  def start_link({name, delay}), do: GenServer.start_link(__MODULE__, delay, name: name)
  def init(delay), do: {:ok, delay}

  def handle_call({:price, sku}, _from, delay) do
    Process.sleep(delay)
    {:reply, {:ok, String.length(sku) * 10}, delay}
  end
end

defmodule Prices do
  @timeout 150

  def fetch_all(sku) do
    [:fast_shop, :mid_shop, :slow_shop]
    |> Task.async_stream(fn shop -> GenServer.call(shop, {:price, sku}, 1_000) end, timeout: @timeout)
    |> Enum.map(fn {:ok, {:ok, price}} -> price end)
  end

  def page(sku) do
    try do
      {:prices, fetch_all(sku)}
    catch
      :exit, {:timeout, _} -> :no_prices
    end
  end
end

defmodule Prices.Main do
  def main do
    for {name, delay} <- [fast_shop: 10, mid_shop: 40, slow_shop: 400] do
      {:ok, _} = Shop.start_link({name, delay})
    end

    waits =
      for sku <- ["widget", "gadget"] do
        t0 = System.monotonic_time(:microsecond)
        :no_prices = Prices.page(sku)
        waited = System.monotonic_time(:microsecond) - t0
        # Let the slow shop finish the request the stream gave up on.
        Process.sleep(300)
        waited
      end

    IO.puts(
      ~s({"timeouts": 2, "timeout_ms": 150, "slow_ms": 400, ) <>
        ~s("waited_ms_max": #{Float.round(Enum.max(waits) / 1000, 2)}})
    )
  end
end

Prices.Main.main()
