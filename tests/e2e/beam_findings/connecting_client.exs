# A database connection as a `gen_statem` (state functions), as client libraries write one: it
# connects in the background, the first two attempts failing (40 ms each, 30 ms apart), and
# postpones the queries that come while it is `:disconnected` until it is `:connected`. Five
# queries come at once as it starts. Planted problem: the callers wait for the connection
# attempts — the state machine's own work in `:disconnected`, on its state timeouts — not for
# each other's queries. Prints its own ground truth: the attempts and each query's wait.
defmodule Db.Conn do
  @behaviour :gen_statem
  @attempt_ms 40
  @backoff_ms 30

  def start_link, do: :gen_statem.start_link({:local, __MODULE__}, __MODULE__, [], [])
  def query(q), do: :gen_statem.call(__MODULE__, {:query, q}, 5_000)

  @impl true
  def callback_mode, do: :state_functions

  @impl true
  def init([]), do: {:ok, :disconnected, %{attempts: 0}, [{:state_timeout, 0, :connect}]}

  def disconnected(:state_timeout, :connect, %{attempts: n} = d) do
    Process.sleep(@attempt_ms)

    if n < 2 do
      {:keep_state, %{d | attempts: n + 1}, [{:state_timeout, @backoff_ms, :connect}]}
    else
      {:next_state, :connected, %{d | attempts: n + 1}}
    end
  end

  def disconnected({:call, _from}, {:query, _q}, _d), do: {:keep_state_and_data, [:postpone]}

  def connected({:call, from}, {:query, q}, _d) do
    Process.sleep(2)
    {:keep_state_and_data, [{:reply, from, {:ok, q}}]}
  end
end

defmodule Db.Main do
  @queries 5

  def main do
    {:ok, _} = Db.Conn.start_link()
    waits =
      1..@queries
      |> Enum.map(fn q -> Task.async(fn -> :timer.tc(fn -> Db.Conn.query(q) end) end) end)
      |> Enum.map(fn t -> elem(Task.await(t), 0) end)

    IO.puts(~s({"queries": #{@queries}, "attempts": 3, "max_wait_ms": #{Float.round(Enum.max(waits) / 1000, 2)}}))
  end
end

Db.Main.main()
