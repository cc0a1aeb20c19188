# A GenServer.call that times out: the report takes ~300 ms to build, the caller waits 100 ms.
# Planted problem: the call to "Report.Server" times out; meanwhile the server was building.
defmodule Report.Server do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, %{built: 0}, name: __MODULE__)
  def fetch_report(timeout), do: GenServer.call(__MODULE__, :build, timeout)

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call(:build, _from, state) do
    Process.sleep(300)
    {:reply, {:ok, "report"}, %{state | built: state.built + 1}}
  end
end

defmodule Report.Main do
  @timeout 100

  def main do
    {:ok, _} = Report.Server.start_link([])
    t0 = System.monotonic_time(:microsecond)

    outcome =
      try do
        Report.Server.fetch_report(@timeout)
      catch
        :exit, {:timeout, _} -> :timed_out
      end

    waited = System.monotonic_time(:microsecond) - t0
    # Let the server finish the build it was doing, so its callback is recorded whole.
    Process.sleep(300)

    IO.puts(
      ~s({"outcome": "#{outcome}", "timeout_ms": #{@timeout}, ) <>
        ~s("waited_ms": #{Float.round(waited / 1000, 2)}, "build_ms": 300})
    )
  end
end

Report.Main.main()
