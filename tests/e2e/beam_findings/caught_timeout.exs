# A feature-flag client that gives up on a slow flag server and falls back to "off", catching
# the timeout inside its own client function (so no exception leaves any function). Planted
# problem: the calls to "Flags.Server" time out (3 times); meanwhile the server was looking up.
defmodule Flags.Server do
  use GenServer

  @timeout 100

  def start_link(_), do: GenServer.start_link(__MODULE__, %{}, name: __MODULE__)

  def enabled?(flag) do
    GenServer.call(__MODULE__, {:enabled?, flag}, @timeout)
  catch
    :exit, {:timeout, _} -> false
  end

  def timeout_ms, do: @timeout

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:enabled?, _flag}, _from, state) do
    # The flag store answers slowly.
    Process.sleep(250)
    {:reply, true, state}
  end
end

defmodule Flags.Main do
  def main do
    {:ok, _} = Flags.Server.start_link([])

    waits =
      for flag <- [:beta, :dark_mode, :new_checkout] do
        t0 = System.monotonic_time(:microsecond)
        false = Flags.Server.enabled?(flag)
        (System.monotonic_time(:microsecond) - t0) / 1000
      end

    # Let the server finish the lookups it was doing, so its callbacks are recorded whole.
    Process.sleep(600)

    IO.puts(
      ~s({"timeouts": #{length(waits)}, "timeout_ms": #{Flags.Server.timeout_ms()}, ) <>
        ~s("waited_ms": #{Float.round(Enum.max(waits), 2)}, "lookup_ms": 250})
    )
  end
end

Flags.Main.main()
