# A GenServer behind two client processes, for tests/web/beam_lanes.test.mjs: recorded by
# `devtrace run --record -- elixir cart.exs`, its processes are the waterfall's lanes, its
# messages the arrows between them and its state the span panel's. The server is registered
# under a name made to be hostile, and keeps hostile text in its state: both must show as
# text. No code of devtrace's in it.

defmodule Cart.Server do
  use GenServer

  @name :"<img src=x onerror=alert(1)>"

  def start_link(note), do: GenServer.start_link(__MODULE__, %{items: 0, note: note}, name: @name)
  def add(n), do: GenServer.call(@name, {:add, n})

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:add, n}, _from, state) do
    # Some work, so the clients wait for the server.
    Process.sleep(5)
    {:reply, {:ok, state.items + n}, %{state | items: state.items + n}}
  end
end

{:ok, _} = Cart.Server.start_link("<img src=x onerror=alert(2)>")
clients = for n <- 1..2, do: Task.async(fn -> Cart.Server.add(n) end)
Enum.each(clients, &Task.await/1)
IO.puts("done")
