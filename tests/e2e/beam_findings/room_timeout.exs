# Chat rooms, one GenServer per room reached through a Registry (`{:via, Registry, …}`): the
# lobby archives its log in a cast (300 ms), and a post to it, called with a 100 ms timeout
# just after, times out (caught by the poster). Planted problem: `call_timeout` on the post,
# naming the lobby's process and the cast's callback that kept it busy. Prints its own ground
# truth.
defmodule Room do
  use GenServer

  def start_link(name), do: GenServer.start_link(__MODULE__, name, name: via(name))
  def post(room, text), do: GenServer.call(via(room), {:post, text}, 100)
  def archive(room), do: GenServer.cast(via(room), :archive)
  defp via(name), do: {:via, Registry, {Rooms, name}}

  @impl true
  def init(name), do: {:ok, %{name: name, log: []}}

  @impl true
  def handle_cast(:archive, state) do
    {took, :ok} = :timer.tc(fn -> Process.sleep(300) end)
    send(:poster, {:archived, took})
    {:noreply, %{state | log: []}}
  end

  @impl true
  def handle_call({:post, text}, _from, state), do: {:reply, :ok, %{state | log: [text | state.log]}}
end

defmodule Room.Main do
  def main do
    Process.register(self(), :poster)
    {:ok, _} = Registry.start_link(keys: :unique, name: Rooms)
    for room <- ["lobby", "dev"], do: {:ok, _} = Room.start_link(room)
    Room.archive("lobby")
    Process.sleep(5)
    t0 = System.monotonic_time(:microsecond)

    outcome =
      try do
        Room.post("lobby", "hello")
      catch
        :exit, {:timeout, _} -> :timed_out
      end

    waited = System.monotonic_time(:microsecond) - t0
    archived = receive(do: ({:archived, took} -> took))

    IO.puts(
      ~s({"outcome": "#{outcome}", "timeout_ms": 100, "waited_ms": #{ms(waited)}, ) <>
        ~s("archive_ms": #{ms(archived)}})
    )
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

Room.Main.main()
