# A key-value store reached over TCP through one connection process, written the way client
# libraries are (Redix's): the connection sends each request on its socket and answers the
# caller from `handle_info/2` when the reply arrives. A page loads ten keys one `GET` at a time
# where one `MGET` would do; the store takes ~5 ms a request, however many keys it holds.
# Planted problem: `repeated_calls` of `Kv.get/1`, its saving the loop less one batch, and the
# time spent waiting on the socket — outside the recording — said to be the connection's wait.
# Prints its own ground truth.
defmodule Kv.Store do
  # The server side, a process of its own: one request a line, answered after 5 ms.
  def start do
    {:ok, listen} = :gen_tcp.listen(0, [:binary, packet: :line, active: false, reuseaddr: true])
    {:ok, port} = :inet.port(listen)
    spawn(fn -> accept(listen) end)
    port
  end

  defp accept(listen) do
    {:ok, socket} = :gen_tcp.accept(listen)
    serve(socket)
  end

  defp serve(socket) do
    case :gen_tcp.recv(socket, 0) do
      {:ok, line} ->
        Process.sleep(5)
        [_command | keys] = String.split(line)
        :ok = :gen_tcp.send(socket, Enum.map_join(keys, " ", &"value-of-#{&1}") <> "\n")
        serve(socket)

      {:error, _} ->
        :ok
    end
  end
end

defmodule Kv.Conn do
  use GenServer

  def start_link(port), do: GenServer.start_link(__MODULE__, port, name: __MODULE__)

  @impl true
  def init(port) do
    {:ok, socket} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, packet: :line, active: true])
    {:ok, %{socket: socket, waiting: :queue.new()}}
  end

  @impl true
  def handle_call({:command, line}, from, state) do
    :ok = :gen_tcp.send(state.socket, line <> "\n")
    {:noreply, %{state | waiting: :queue.in({from, now()}, state.waiting)}}
  end

  @impl true
  def handle_info({:tcp, _socket, data}, state) do
    # Replies in order; each with how long its request waited on the socket (the truth).
    {{:value, {from, sent}}, waiting} = :queue.out(state.waiting)
    GenServer.reply(from, {String.split(data), now() - sent})
    {:noreply, %{state | waiting: waiting}}
  end

  defp now, do: System.monotonic_time(:microsecond)
end

defmodule Kv do
  def get(key), do: GenServer.call(Kv.Conn, {:command, "GET " <> key})
  def mget(keys), do: GenServer.call(Kv.Conn, {:command, Enum.join(["MGET" | keys], " ")})
end

defmodule Kv.Main do
  def main do
    {:ok, _} = Kv.Conn.start_link(Kv.Store.start())
    keys = for n <- 1..10, do: "user:#{n}"
    Kv.get("warm-up")
    {loop, answers} = :timer.tc(fn -> Enum.map(keys, &Kv.get/1) end)
    on_socket = answers |> Enum.map(fn {_, waited} -> waited end) |> Enum.sum()
    {batch, {values, _}} = :timer.tc(fn -> Kv.mget(keys) end)
    10 = length(values)

    IO.puts(
      ~s({"calls": #{length(keys)}, "loop_ms": #{ms(loop)}, "batch_ms": #{ms(batch)}, ) <>
        ~s("on_socket_ms": #{ms(on_socket)}})
    )
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

Kv.Main.main()
