# A worker that does one import and stops normally (`{:stop, :normal, state}`), written as a
# plain `use GenServer` — so `restart: :permanent`, the default. Its supervisor starts it again
# each time it stops, until the restart intensity (5 in 5 s) is spent and the supervisor gives
# up. Planted problem: a child restarted however it ends, stopping again and again, with no
# crash and no error anywhere.
defmodule Importer do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)

  def init(:ok) do
    send(self(), :import)
    {:ok, %{imported: 0}}
  end

  def handle_info(:import, s) do
    Process.sleep(5)
    {:stop, :normal, %{s | imported: s.imported + 100}}
  end
end

defmodule Importer.Main do
  def main do
    Process.flag(:trap_exit, true)
    children = [Importer]
    {:ok, sup} = Supervisor.start_link(children, strategy: :one_for_one, max_restarts: 5, max_seconds: 5)

    reason =
      receive do
        {:EXIT, ^sup, reason} -> reason
      after
        3_000 -> :still_running
      end

    # The first start and five restarts: six lives, each stopped.
    IO.puts(~s({"supervisor_exit": "#{inspect(reason)}", "stops": 6}))
  end
end

Importer.Main.main()
