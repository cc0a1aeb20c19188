# A pricing server whose callback computes: each quote folds over 2,000,000 steps with an
# anonymous function (`Enum.reduce/3`), as code that scores, hashes or parses does. Eight
# checkouts ask it at once and wait in line. Planted problem: "Pricing.Server" serialises its
# callers (the last one waits for the seven quotes before its own). The fold's function is
# called millions of times: recorded call by call, it would take the program many times longer
# than the program itself. Prints its own ground truth, with how many times it called it.
defmodule Pricing.Server do
  use GenServer

  @steps 2_000_000

  def start_link(_), do: GenServer.start_link(__MODULE__, 0, name: __MODULE__)
  # Replies with the quote and how long the server worked on it (the program's ground truth).
  def quote_for(cart), do: GenServer.call(__MODULE__, {:quote, cart}, 60_000)
  def steps, do: @steps

  @impl true
  def init(quoted), do: {:ok, quoted}

  @impl true
  def handle_call({:quote, cart}, _from, quoted) do
    {worked, price} = :timer.tc(fn -> price(cart) end)
    {:reply, {price, worked}, quoted + 1}
  end

  defp price(cart) do
    Enum.reduce(1..@steps, cart, fn step, acc -> rem(acc * 31 + step, 1_000_003) end)
  end
end

defmodule Pricing.Main do
  @callers 8

  def main do
    {:ok, _} = Pricing.Server.start_link([])
    {_, warm_up_worked} = Pricing.Server.quote_for(1)

    tasks =
      for cart <- 1..@callers do
        Task.async(fn -> :timer.tc(fn -> Pricing.Server.quote_for(cart) end) end)
      end

    calls = Enum.map(tasks, &Task.await(&1, 60_000))
    queued = for {took, {_, worked}} <- calls, do: took - worked
    worked = [warm_up_worked | for({_, {_, w}} <- calls, do: w)]

    IO.puts(
      ~s({"callers": #{@callers}, "max_queued_ms": #{ms(Enum.max(queued))}, ) <>
        ~s("service_ms_mean": #{ms(Enum.sum(worked) / length(worked))}, ) <>
        ~s("fold_calls": #{(@callers + 1) * Pricing.Server.steps()}})
    )
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

Pricing.Main.main()
