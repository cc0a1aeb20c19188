# Pricing settings kept in an Agent, every request handler asking it for a discount through
# `Agent.get/2` with a function that does the work (a common shape: the function runs inside
# the Agent's process, so the handlers take turns). Planted problem: "Pricing.Settings"
# serialises its callers; the advice is to do the work in the callers. Prints its own ground
# truth.
defmodule Pricing.Settings do
  use Agent

  def start_link(_), do: Agent.start_link(fn -> %{tiers: Enum.to_list(1..500)} end, name: __MODULE__)

  # Returns the discount and how long the Agent worked on it (the program's ground truth).
  def discount_for(customer) do
    Agent.get(__MODULE__, fn settings ->
      :timer.tc(fn ->
        # The slow part, inside the Agent: a rule lookup that takes ~12 ms.
        Process.sleep(12)
        rem(Enum.sum(settings.tiers), customer + 7)
      end)
    end)
  end
end

defmodule Pricing.Main do
  @callers 6

  def main do
    {:ok, _} = Pricing.Settings.start_link([])

    # Each handler: how long its call took, and how much of it the Agent spent on it; the
    # rest it spent queued behind the other handlers.
    tasks =
      for n <- 1..@callers do
        Task.async(fn -> :timer.tc(fn -> Pricing.Settings.discount_for(n) end) end)
      end

    calls = Enum.map(tasks, &Task.await/1)
    queued = for {took, {worked, _discount}} <- calls, do: took - worked
    worked = for {_, {w, _}} <- calls, do: w

    IO.puts(
      ~s({"callers": #{@callers}, "max_queued_ms": #{ms(Enum.max(queued))}, ) <>
        ~s("service_ms_mean": #{ms(Enum.sum(worked) / length(worked))}})
    )
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

Pricing.Main.main()
