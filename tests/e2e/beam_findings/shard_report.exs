# A report asking four shards of a search index — each a plain process running a receive loop
# of its own, answering `{:lookup, from, ref, key}` after 15 ms — one after another, through
# a comprehension that sends and waits inline (`for shard <- shards do send …; receive … end`),
# three keys in turn. Planted problem: the four asks are independent and could overlap (the
# comprehension hands each ask the answers so far, which it does not read). Prints its own
# ground truth: the report's time against the same asks gathered at once.
defmodule Shard do
  def start(n), do: spawn(fn -> loop(n) end)

  def loop(n) do
    receive do
      {:lookup, from, ref, key} ->
        Process.sleep(15)
        send(from, {ref, {n, key, :erlang.phash2({n, key})}})
        loop(n)
    end
  end
end

defmodule Report do
  def rows(shards, key) do
    for shard <- shards do
      ref = make_ref()
      send(shard, {:lookup, self(), ref, key})

      receive do
        {^ref, row} -> row
      end
    end
  end

  # The same asks, all sent before any answer is awaited.
  def rows_at_once(shards, key) do
    refs = for shard <- shards, do: ask(shard, key)
    for ref <- refs, do: receive(do: ({^ref, row} -> row))
  end

  defp ask(shard, key) do
    ref = make_ref()
    send(shard, {:lookup, self(), ref, key})
    ref
  end
end

defmodule Report.Main do
  @keys 1..3

  def main do
    shards = for n <- 1..4, do: Shard.start(n)
    {one_after_another, _} = :timer.tc(fn -> for key <- @keys, do: Report.rows(shards, key) end)
    # Best of three: the first pays for loading code.
    at_once =
      Enum.min(for _ <- 1..3, do: elem(:timer.tc(fn -> for key <- @keys, do: Report.rows_at_once(shards, key) end), 0))

    IO.puts(
      ~s({"one_after_another_ms": #{ms(one_after_another)}, "at_once_ms": #{ms(at_once)}, ) <>
        ~s("saving_ms": #{ms(one_after_another - at_once)}})
    )
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

Report.Main.main()
