# Sixteen prices fetched from a remote service with Task.async_stream, max_concurrency left at
# its default (System.schedulers_online(): the machine's cores), although each fetch only waits
# for the service (40 ms) and computes nothing. Planted problem: the tasks run a core's worth at
# a time, each starting as another ends, their waits one after another. The program measures
# the stream, then the same fetches all at once, and prints its own truth as a JSON line.
defmodule Prices do
  @latency_ms 40
  def fetch(sku) do
    Process.sleep(@latency_ms)
    {sku, 100 + rem(sku * 7, 13)}
  end

  def all(skus) do
    skus
    |> Task.async_stream(&fetch/1)
    |> Enum.map(fn {:ok, price} -> price end)
  end

  def all_at_once(skus) do
    skus
    |> Task.async_stream(&fetch/1, max_concurrency: length(skus))
    |> Enum.map(fn {:ok, price} -> price end)
  end
end

defmodule Prices.Main do
  def timed(fun) do
    t0 = System.monotonic_time(:microsecond)
    fun.()
    (System.monotonic_time(:microsecond) - t0) / 1000
  end

  def main do
    skus = Enum.to_list(1..16)
    limited_ms = timed(fn -> Prices.all(skus) end)
    at_once_ms = timed(fn -> Prices.all_at_once(skus) end)

    IO.puts(
      ~s({"tasks": #{length(skus)}, "at_once": #{System.schedulers_online()}, ) <>
        ~s("limited_ms": #{Float.round(limited_ms, 2)}, "all_at_once_ms": #{Float.round(at_once_ms, 2)}})
    )
  end
end

Prices.Main.main()
