# The BEAM flight recorder's values test program (tests/e2e/test_beam_flight.py): a long, busy
# run whose window must keep its last calls' values. A supervised GenServer, `Ledger.Server`,
# posts entries: `Ledger.Server.post/1` numbers them from 1, and the server's state says how many
# it posted and the last one (`%{count: N, last: N}` after post N). A busy phase posts as fast as
# it can for EARLY_MS (its value summaries alone would fill the names log's share many times
# over), a late phase posts 10 every PAUSE_MS for LATE_MS (more than a 2 MiB file's value
# area holds a second of), then a refund of the last entry crashes
# the server's `handle_call/3` (a bad amount), which ends the script with the server's exit.
# Its ground truth, printed before the crash: how many entries it posted.
#
#   elixir flight_values.exs EARLY_MS LATE_MS PAUSE_MS
defmodule Ledger.Server do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, %{count: 0, last: 0}, name: __MODULE__)
  def post(n), do: GenServer.call(__MODULE__, {:post, n})
  def refund(n, amount), do: GenServer.call(__MODULE__, {:refund, n, amount})

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:post, n}, _from, state) do
    {:reply, {:posted, n}, %{state | count: state.count + 1, last: n}}
  end

  def handle_call({:refund, n, amount}, _from, state) do
    {:reply, {:refunded, n, div(100, amount)}, state}
  end
end

defmodule Ledger.Main do
  def now, do: System.monotonic_time(:millisecond)

  def busy(deadline, n) do
    if now() < deadline do
      {:posted, ^n} = Ledger.Server.post(n)
      busy(deadline, n + 1)
    else
      n
    end
  end

  def paced(deadline, pause, n) do
    if now() < deadline do
      next = post_batch(n, n + 10)
      Process.sleep(pause)
      paced(deadline, pause, next)
    else
      n
    end
  end

  def post_batch(n, n), do: n

  def post_batch(n, last) do
    {:posted, ^n} = Ledger.Server.post(n)
    post_batch(n + 1, last)
  end

  def run([early_ms, late_ms, pause_ms]) do
    {:ok, _} = Supervisor.start_link([Ledger.Server], strategy: :one_for_one, name: Ledger.Sup)
    next = busy(now() + String.to_integer(early_ms), 1)
    next = paced(now() + String.to_integer(late_ms), String.to_integer(pause_ms), next)
    IO.puts(~s({"posted": #{next - 1}}))
    Ledger.Server.refund(next - 1, 0)
  end
end

Ledger.Main.run(System.argv())
