# Pages fetched through a batcher: a GenServer that queues its callers (`{:noreply, ...}`) and
# answers all of them at each tick of a timer (`:timer.send_interval/2`, 50 ms), with
# `GenServer.reply/2`. The fetches run 10 at a time (`Task.async_stream`). Planted problem: the
# limit of 10 makes three ticks of what one tick would answer: run all at once (the program
# does, to measure it), the thirty take one tick. Prints its own ground truth.
defmodule Batched.Batcher do
  use GenServer

  def start_link(interval), do: GenServer.start_link(__MODULE__, interval, name: __MODULE__)
  def submit, do: GenServer.call(__MODULE__, :submit, 20_000)

  @impl true
  def init(interval) do
    {:ok, _} = :timer.send_interval(interval, :tick)
    {:ok, :queue.new()}
  end

  @impl true
  def handle_call(:submit, from, waiting), do: {:noreply, :queue.in(from, waiting)}

  @impl true
  def handle_info(:tick, waiting) do
    for from <- :queue.to_list(waiting), do: GenServer.reply(from, :ok)
    {:noreply, :queue.new()}
  end
end

defmodule Batched.Pages do
  def fetch(page) do
    :ok = Batched.Batcher.submit()
    Process.sleep(2)
    {:page, page}
  end

  def fetch_all(pages, at_once) do
    pages
    |> Task.async_stream(&fetch/1, max_concurrency: at_once, timeout: 20_000)
    |> Enum.map(fn {:ok, page} -> page end)
  end
end

defmodule Batched.Main do
  @interval 50

  def main do
    {:ok, _} = Batched.Batcher.start_link(@interval)
    {limited, fetched} = :timer.tc(fn -> Batched.Pages.fetch_all(1..30, 10) end)
    {all_at_once, _} = :timer.tc(fn -> Batched.Pages.fetch_all(31..60, 30) end)

    IO.puts(
      ~s({"pages": #{length(fetched)}, "interval_ms": #{@interval}, ) <>
        ~s("limited_ms": #{limited / 1000}, "all_at_once_ms": #{all_at_once / 1000}})
    )
  end
end

Batched.Main.main()
