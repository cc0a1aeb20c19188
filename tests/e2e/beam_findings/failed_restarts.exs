# A listener that binds a port in init/1: the first start binds it, then a later accept fails and
# the process crashes; every restart finds the port still bound and fails in init/1 (before it
# has a state), until the supervisor gives up. When init/1 fails, the supervisor retries by a
# cast to itself (try_again_restart): those starts are restarts too. Planted problem: a restart
# loop of lives that fail to start, which restarting cannot help.
defmodule Listener do
  use GenServer

  def start_link(port), do: GenServer.start_link(__MODULE__, port, name: __MODULE__)

  def init(port) do
    :counters.add(:persistent_term.get(:starts), 1, 1)

    if :persistent_term.get(:bound, false) do
      Process.sleep(5)
      raise "eaddrinuse: port #{port} already bound"
    else
      :persistent_term.put(:bound, true)
      Process.send_after(self(), :accept, 20)
      {:ok, %{port: port}}
    end
  end

  def handle_info(:accept, state), do: raise("accept failed on port #{state.port}")
end

defmodule Listener.Main do
  @max_restarts 5

  def main do
    :persistent_term.put(:starts, :counters.new(1, []))
    Process.flag(:trap_exit, true)
    opts = [strategy: :one_for_one, max_restarts: @max_restarts, max_seconds: 5]
    {:ok, sup} = Supervisor.start_link([{Listener, 4000}], opts)

    receive do
      {:EXIT, ^sup, :shutdown} -> :gave_up
    after
      5_000 -> raise "the supervisor did not give up"
    end

    starts = :counters.get(:persistent_term.get(:starts), 1)
    # Every start after the first failed in init/1 (the last may be cut by the supervisor's
    # own shutdown as it gives up).
    IO.puts(~s({"starts": #{starts}, "failed_starts": #{starts - 1}, "max_restarts": #{@max_restarts}}))
  end
end

Listener.Main.main()
