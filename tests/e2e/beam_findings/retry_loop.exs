# A client retrying a flaky upstream, the way Elixir code retries: a recursive function that
# calls the server, and on `{:error, reason}` sleeps and calls itself with the next attempt.
# The upstream answers `{:error, :unavailable}` for its first 150 ms. Planted problem: the same
# call failing and retried again and again — no exception anywhere, only error tuples.
defmodule Upstream do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, now(), name: __MODULE__)
  def fetch(id), do: GenServer.call(__MODULE__, {:fetch, id})
  def init(t0), do: {:ok, t0}

  def handle_call({:fetch, id}, _from, t0) do
    Process.sleep(5)

    if now() - t0 < 150,
      do: {:reply, {:error, :unavailable}, t0},
      else: {:reply, {:ok, "item #{id}"}, t0}
  end

  defp now, do: System.monotonic_time(:millisecond)
end

defmodule Client do
  def get(id, attempt \\ 1) do
    case Upstream.fetch(id) do
      {:ok, item} ->
        {item, attempt}

      {:error, _} when attempt < 20 ->
        Process.sleep(10 * attempt)
        get(id, attempt + 1)
    end
  end
end

defmodule Client.Main do
  def main do
    {:ok, _} = Upstream.start_link([])
    t0 = System.monotonic_time(:microsecond)
    {_, attempts} = Client.get(1)
    took = System.monotonic_time(:microsecond) - t0
    IO.puts(~s({"attempts": #{attempts}, "took_ms": #{Float.round(took / 1000, 2)}}))
  end
end

Client.Main.main()
