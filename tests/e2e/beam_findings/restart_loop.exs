# A supervised worker that crashes on every poll until its feed is configured: the supervisor
# restarts it again and again. Planted problem: "Feed.Worker" in a crash/restart loop under its
# supervisor (4 crashes, RuntimeError), with the worker's state before each crash.
defmodule Feed.Worker do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)

  @impl true
  def init(:ok) do
    :ets.insert(:feed_lives, {System.monotonic_time(:microsecond)})
    Process.send_after(self(), :poll, 5)
    {:ok, %{url: "https://feeds.example/prices", polls: 0}}
  end

  @impl true
  def handle_info(:poll, state) do
    attempt = :ets.update_counter(:feed_attempts, :n, 1)

    if attempt <= 4 do
      :ets.insert(:feed_crashes, {System.monotonic_time(:microsecond)})
      raise "feed not configured (attempt #{attempt})"
    end

    {:noreply, %{state | polls: state.polls + 1}}
  end
end

defmodule Feed.Main do
  def main do
    :ets.new(:feed_attempts, [:named_table, :public])
    :ets.insert(:feed_attempts, {:n, 0})
    # When each worker started and when each crashed: the loop's ground truth.
    :ets.new(:feed_lives, [:named_table, :public, :ordered_set])
    :ets.new(:feed_crashes, [:named_table, :public, :ordered_set])

    {:ok, sup} =
      Supervisor.start_link([Feed.Worker], strategy: :one_for_one, max_restarts: 10, max_seconds: 5)

    wait_until_polled()
    Supervisor.stop(sup)
  end

  # The fifth worker polls without crashing: the loop is over.
  defp wait_until_polled do
    if :ets.lookup_element(:feed_attempts, :n, 2) >= 5 do
      first_start = :ets.first(:feed_lives)
      crashes = :ets.tab2list(:feed_crashes)
      last_crash = :ets.last(:feed_crashes)
      looped = (last_crash - first_start) / 1000

      IO.puts(
        ~s({"crashes": #{length(crashes)}, "reason": "RuntimeError", ) <>
          ~s("loop_ms": #{Float.round(looped, 2)}})
      )
    else
      Process.sleep(2)
      wait_until_polled()
    end
  end
end

Feed.Main.main()
