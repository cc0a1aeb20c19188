# A dashboard GenServer refreshing itself every 10 ms with :timer.send_interval/2, whose
# refresh takes 16 ms: the ticks pile up in its mailbox. A web request asks it for a snapshot
# every 60 ms, one at a time, and each waits longer than the last behind the refreshes queued
# before it. Planted problem: the callers wait behind the server's own work, which comes faster
# than it is done — not behind each other (partitioning would not help).
defmodule Dashboard do
  use GenServer
  @every_ms 10
  @refresh_ms 16
  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)
  def snapshot, do: GenServer.call(__MODULE__, :snapshot, 10_000)
  def refresh_ms, do: @refresh_ms

  def init(:ok) do
    {:ok, _} = :timer.send_interval(@every_ms, :refresh)
    {:ok, %{refreshes: 0}}
  end

  def handle_info(:refresh, s) do
    Process.sleep(@refresh_ms)
    {:noreply, %{s | refreshes: s.refreshes + 1}}
  end

  def handle_call(:snapshot, _from, s), do: {:reply, s.refreshes, s}
end

defmodule Dashboard.Main do
  def request do
    t0 = System.monotonic_time(:microsecond)
    Dashboard.snapshot()
    System.monotonic_time(:microsecond) - t0
  end

  def main do
    {:ok, _} = Dashboard.start_link([])

    waits =
      for _ <- 1..5 do
        Process.sleep(60)
        Task.async(&request/0) |> Task.await(10_000)
      end

    IO.puts(
      ~s({"calls": 5, "waited_ms": #{Float.round(Enum.sum(waits) / 1000, 2)}, ) <>
        ~s("last_wait_ms": #{Float.round(List.last(waits) / 1000, 2)}, "refresh_ms": #{Dashboard.refresh_ms()}})
    )
  end
end

Dashboard.Main.main()
