# A basket priced in four currencies, each exchange rate fetched in a task — and each task
# awaited as soon as it is started, inside `Enum.map`: the concurrency is written, none is used.
# Written twice, as Elixir code writes it: `Task.async` (`Rates.convert_all/1`), and a task under
# a `Task.Supervisor` (`Rates.convert_all_supervised/1`).
# Planted problems (two): the four tasks run one after another where starting them all and then
# awaiting them (`Task.await_many`, `Task.async_stream`) would overlap them; no task needs
# another's result.
defmodule Rates do
  @latency_ms %{"EUR" => 20, "GBP" => 30, "JPY" => 25, "CHF" => 22}

  def currencies, do: Map.keys(@latency_ms)

  def fetch_rate(currency) do
    Process.sleep(@latency_ms[currency])
    {currency, 1 + rem(:erlang.phash2(currency), 100) / 100}
  end

  def convert_all(currencies) do
    t0 = System.monotonic_time(:microsecond)

    rates =
      Enum.map(currencies, fn currency ->
        Task.async(fn -> fetch_rate(currency) end) |> Task.await()
      end)

    {System.monotonic_time(:microsecond) - t0, Map.new(rates)}
  end

  def convert_all_supervised(currencies) do
    t0 = System.monotonic_time(:microsecond)

    rates =
      Enum.map(currencies, fn currency ->
        Task.Supervisor.async(Rates.TaskSup, fn -> fetch_rate(currency) end) |> Task.await()
      end)

    {System.monotonic_time(:microsecond) - t0, Map.new(rates)}
  end

  def overlapped(currencies) do
    {took, _} =
      :timer.tc(fn ->
        currencies |> Enum.map(&Task.async(fn -> fetch_rate(&1) end)) |> Task.await_many()
      end)

    took
  end
end

defmodule Rates.Main do
  def main do
    {:ok, _} = Task.Supervisor.start_link(name: Rates.TaskSup)
    {one_after_another, rates} = Rates.convert_all(Rates.currencies())
    {supervised, _} = Rates.convert_all_supervised(Rates.currencies())
    # The same four tasks overlapped, best of three.
    overlapped = Enum.min(for _ <- 1..3, do: Rates.overlapped(Rates.currencies()))

    IO.puts(
      ~s({"rates": #{map_size(rates)}, "saving_ms": #{ms(one_after_another - overlapped)}, ) <>
        ~s("supervised_saving_ms": #{ms(supervised - overlapped)}})
    )
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

Rates.Main.main()
