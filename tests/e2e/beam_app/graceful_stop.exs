# A service stopped gracefully, as a release is on SIGTERM (System.stop/0: init:stop): a cache
# GenServer under a supervisor and three worker loops waiting for jobs are running when the VM
# stops, and the VM kills them. One other process was killed for real before the stop.
defmodule Stop.Cache do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, %{}, name: __MODULE__)
  def init(s), do: {:ok, s}
  def put(k, v), do: GenServer.cast(__MODULE__, {:put, k, v})
  def handle_cast({:put, k, v}, s), do: {:noreply, Map.put(s, k, v)}
end

defmodule Stop.Worker do
  def loop(n) do
    receive do
      {:job, j} ->
        Stop.Cache.put(j, n)
        loop(n + 1)
    end
  end
end

defmodule Stop.Doomed do
  def wait, do: receive(do: (:never -> :ok))
end

defmodule Stop.Main do
  def main do
    {:ok, _} = Supervisor.start_link([Stop.Cache], strategy: :one_for_one)
    workers = for _ <- 1..3, do: spawn(fn -> Stop.Worker.loop(0) end)
    for {w, j} <- Enum.with_index(workers), do: send(w, {:job, j})
    doomed = spawn(fn -> Stop.Doomed.wait() end)
    Process.sleep(20)
    Process.exit(doomed, :kill)
    Process.sleep(20)
    IO.puts(~s({"workers": #{length(workers)}, "doomed": "#{inspect(doomed)}"}))
    System.stop()
    Process.sleep(:infinity)
  end
end

Stop.Main.main()
