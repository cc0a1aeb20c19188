# Pages fetched through a rate limiter, as people write one: a GenServer that queues its callers
# (`{:noreply, ...}`) and hands out one token each tick of a timer (`:timer.send_interval/2`),
# answering with `GenServer.reply/2`. The fetches run 10 at a time (`Task.async_stream`), each
# waiting almost all its time for a token. Nothing is planted: the wait is the limiter's pace,
# so running more fetches at once would not make the run shorter (the program runs them again
# all at once to measure it). Prints its own ground truth.
defmodule RateLimited.Limiter do
  use GenServer

  def start_link(interval), do: GenServer.start_link(__MODULE__, interval, name: __MODULE__)
  def acquire, do: GenServer.call(__MODULE__, :acquire, 20_000)

  @impl true
  def init(interval) do
    {:ok, _} = :timer.send_interval(interval, :tick)
    {:ok, :queue.new()}
  end

  @impl true
  def handle_call(:acquire, from, waiting), do: {:noreply, :queue.in(from, waiting)}

  @impl true
  def handle_info(:tick, waiting) do
    case :queue.out(waiting) do
      {{:value, from}, rest} ->
        GenServer.reply(from, :ok)
        {:noreply, rest}

      {:empty, waiting} ->
        {:noreply, waiting}
    end
  end
end

defmodule RateLimited.Pages do
  def fetch(page) do
    :ok = RateLimited.Limiter.acquire()
    Process.sleep(2)
    {:page, page}
  end

  def fetch_all(pages, at_once) do
    pages
    |> Task.async_stream(&fetch/1, max_concurrency: at_once, timeout: 20_000)
    |> Enum.map(fn {:ok, page} -> page end)
  end
end

defmodule RateLimited.Main do
  @interval 20

  def main do
    {:ok, _} = RateLimited.Limiter.start_link(@interval)
    {limited, fetched} = :timer.tc(fn -> RateLimited.Pages.fetch_all(1..30, 10) end)
    {all_at_once, _} = :timer.tc(fn -> RateLimited.Pages.fetch_all(31..60, 30) end)

    IO.puts(
      ~s({"pages": #{length(fetched)}, "interval_ms": #{@interval}, ) <>
        ~s("limited_ms": #{limited / 1000}, "all_at_once_ms": #{all_at_once / 1000}})
    )
  end
end

RateLimited.Main.main()
