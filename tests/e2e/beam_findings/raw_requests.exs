# A key-value store written as a bare receive loop (no GenServer: the way the Elixir guides'
# first processes are written), spawned and never registered, asked one key at a time with a
# hand-made request and reply — a reference in each request — where one request for all the
# keys would do. Planted problem: an N+1 of requests to the store (25 of ~2 ms), one caller,
# no queue: the store serves each request as it comes.
defmodule Kv.Store do
  def start(data), do: spawn(fn -> loop(data) end)

  def get(store, key) do
    ref = make_ref()
    send(store, {:get, self(), ref, key})

    receive do
      {^ref, value} -> value
    end
  end

  def get_many(store, keys) do
    ref = make_ref()
    send(store, {:get_many, self(), ref, keys})

    receive do
      {^ref, values} -> values
    end
  end

  # Each request pays a fixed cost (a read from a remote table), whatever it asks for.
  defp loop(data) do
    receive do
      {:get, from, ref, key} ->
        Process.sleep(2)
        send(from, {ref, Map.get(data, key)})
        loop(data)

      {:get_many, from, ref, keys} ->
        Process.sleep(2)
        send(from, {ref, Enum.map(keys, &Map.get(data, &1))})
        loop(data)
    end
  end
end

defmodule Kv.Main do
  @keys 25

  def main do
    keys = for n <- 1..@keys, do: "user:#{n}"
    store = Kv.Store.start(Map.new(keys, &{&1, byte_size(&1)}))
    {loop, values} = :timer.tc(fn -> Enum.map(keys, &Kv.Store.get(store, &1)) end)
    {batched, ^values} = :timer.tc(fn -> Kv.Store.get_many(store, keys) end)

    IO.puts(
      ~s({"calls": #{@keys}, "loop_ms": #{Float.round(loop / 1000, 2)}, ) <>
        ~s("batched_ms": #{Float.round(batched / 1000, 2)}, ) <>
        ~s("saving_ms": #{Float.round((loop - batched) / 1000, 2)}})
    )
  end
end

Kv.Main.main()
