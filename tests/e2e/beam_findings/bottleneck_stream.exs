# The same bottleneck with callers that take turns: sixty jobs run six at a time by
# Task.async_stream, each asking one rate limiter GenServer for a token before its own 2 ms of
# work. Planted problem: "RateLimiter" serialises its callers (4 ms of its time a token), so the
# jobs spend most of their time in its queue — though no one job waits long, the whole stream
# does. Ground truth: the stream's time less the same jobs' with the limiter's 4 ms done by
# each job itself (what partitioning it would give).
defmodule RateLimiter do
  use GenServer

  def start_link, do: GenServer.start_link(__MODULE__, 0, name: __MODULE__)
  def take, do: GenServer.call(__MODULE__, :take)

  @impl true
  def init(granted), do: {:ok, granted}

  @impl true
  def handle_call(:take, _from, granted) do
    Process.sleep(4)
    {:reply, :ok, granted + 1}
  end
end

defmodule Crawl do
  @jobs 60
  @at_once 6

  def fetch(page) do
    :ok = RateLimiter.take()
    Process.sleep(2)
    {page, 200}
  end

  def fetch_unqueued(page) do
    Process.sleep(4)
    Process.sleep(2)
    {page, 200}
  end

  def run(fun) do
    t0 = System.monotonic_time(:microsecond)
    1..@jobs |> Task.async_stream(fun, max_concurrency: @at_once) |> Enum.to_list()
    System.monotonic_time(:microsecond) - t0
  end

  def main do
    {:ok, _} = RateLimiter.start_link()
    # Task.async_stream's code loaded before either is timed.
    run(&fetch_unqueued/1)
    queued = run(&fetch/1)
    unqueued = run(&fetch_unqueued/1)
    IO.puts(~s({"jobs": #{@jobs}, "saving_ms": #{Float.round((queued - unqueued) / 1000, 2)}}))
  end
end

defmodule Crawl.Main do
  def main, do: Crawl.main()
end

Crawl.Main.main()
