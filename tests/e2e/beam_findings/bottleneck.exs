# A GenServer every request goes through: eight clients call it at once and wait in line.
# Planted problem: "Stock.Server" serialises its callers (each reservation takes ~15 ms of the
# server's time, so the last caller waits for all the others). Prints its own ground truth.
defmodule Stock.Server do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, %{reserved: %{}}, name: __MODULE__)
  # Replies with how long the server worked on this request (the program's ground truth).
  def reserve(sku), do: GenServer.call(__MODULE__, {:reserve, sku})

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:reserve, sku}, _from, state) do
    # The slow part: a check the server does while every other caller waits.
    {worked, :ok} = :timer.tc(fn -> Process.sleep(15) end)
    {:reply, worked, %{state | reserved: Map.update(state.reserved, sku, 1, &(&1 + 1))}}
  end
end

defmodule Stock.Main do
  @callers 8

  def main do
    {:ok, _} = Stock.Server.start_link([])
    # One reservation alone: what a call costs when nobody is ahead of it.
    t0 = now()
    warm_up_worked = Stock.Server.reserve("warm-up")
    alone = now() - t0

    # Each caller: how long its call took, and how much of it the server spent on it; the
    # rest it spent queued behind the other callers.
    tasks =
      for n <- 1..@callers do
        Task.async(fn -> :timer.tc(fn -> Stock.Server.reserve("sku-#{n}") end) end)
      end

    calls = Enum.map(tasks, &Task.await/1)
    queued = for {took, worked} <- calls, do: took - worked
    worked = [warm_up_worked | for({_, w} <- calls, do: w)]

    IO.puts(
      ~s({"callers": #{@callers}, "alone_ms": #{ms(alone)}, ) <>
        ~s("max_queued_ms": #{ms(Enum.max(queued))}, "queued_ms": #{ms(Enum.sum(queued))}, ) <>
        ~s("service_ms_mean": #{ms(Enum.sum(worked) / length(worked))}})
    )
  end

  defp now, do: System.monotonic_time(:microsecond)
  defp ms(us), do: Float.round(us / 1000, 2)
end

Stock.Main.main()
