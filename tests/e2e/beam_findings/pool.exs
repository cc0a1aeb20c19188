# A connection pool written as pool libraries write it: checkout hands out a free connection or
# keeps the caller waiting (no reply yet); checkin hands the connection to the next waiting
# caller (GenServer.reply/2). Two connections, eight clients at once, each holding one for
# 40 ms. Planted problem: the clients wait for a connection — the pool's limit — not for the
# pool process, which is idle meanwhile.
defmodule Pool do
  use GenServer
  def start_link(size), do: GenServer.start_link(__MODULE__, size, name: __MODULE__)
  def init(size), do: {:ok, %{free: Enum.to_list(1..size), waiting: :queue.new()}}
  def checkout, do: GenServer.call(__MODULE__, :checkout, 5_000)
  def checkin(conn), do: GenServer.cast(__MODULE__, {:checkin, conn})

  def handle_call(:checkout, _from, %{free: [conn | rest]} = s), do: {:reply, conn, %{s | free: rest}}
  def handle_call(:checkout, from, s), do: {:noreply, %{s | waiting: :queue.in(from, s.waiting)}}

  def handle_cast({:checkin, conn}, s) do
    case :queue.out(s.waiting) do
      {{:value, from}, waiting} ->
        GenServer.reply(from, conn)
        {:noreply, %{s | waiting: waiting}}

      {:empty, _} ->
        {:noreply, %{s | free: [conn | s.free]}}
    end
  end
end

defmodule Pool.Client do
  @hold_ms 40

  def query(n) do
    t0 = System.monotonic_time(:microsecond)
    conn = Pool.checkout()
    waited = System.monotonic_time(:microsecond) - t0
    Process.sleep(@hold_ms)
    Pool.checkin(conn)
    {n, waited}
  end
end

defmodule Pool.Main do
  def main do
    {:ok, _} = Pool.start_link(2)

    waits =
      1..8
      |> Enum.map(fn n -> Task.async(fn -> Pool.Client.query(n) end) end)
      |> Enum.map(&Task.await/1)
      |> Enum.map(fn {_, waited} -> waited end)

    waited = Enum.filter(waits, &(&1 > 10_000))

    IO.puts(
      ~s({"size": 2, "hold_ms": 40, "waited": #{length(waited)}, ) <>
        ~s("max_wait_ms": #{Float.round(Enum.max(waits) / 1000, 2)}})
    )
  end
end

Pool.Main.main()
