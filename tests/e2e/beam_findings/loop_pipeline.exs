# A pipeline of hand-written processes (no GenServer): parse → enrich → store, each a receive
# loop that works on an item, hands it on and calls itself. Enrich is slow (~8 ms an item)
# while items arrive all at once, so its mailbox backs up. Planted problem: "loop_enrich" falls
# behind: items wait in its mailbox. Each item carries the time it was handed on, so each stage
# measures how long it waited before the stage took it: the ground truth.
defmodule LoopPipeline.Stage do
  def loop(work_ms, next, waits) do
    receive do
      {:item, item, sent_at} ->
        waited = System.monotonic_time(:microsecond) - sent_at
        if work_ms > 0, do: Process.sleep(work_ms)
        send(next, {:item, item, System.monotonic_time(:microsecond)})
        loop(work_ms, next, [waited | waits])

      {:waits, from} ->
        send(from, {:waits, waits})
        loop(work_ms, next, waits)
    end
  end

  def start(name, work_ms, next) do
    pid = spawn_link(fn -> loop(work_ms, next, []) end)
    Process.register(pid, name)
    pid
  end
end

defmodule LoopPipeline.Main do
  @items 40

  def main do
    owner = self()
    store = LoopPipeline.Stage.start(:loop_store, 0, owner)
    enrich = LoopPipeline.Stage.start(:loop_enrich, 8, store)
    parse = LoopPipeline.Stage.start(:loop_parse, 0, enrich)
    for n <- 1..@items, do: send(parse, {:item, "item-#{n}", System.monotonic_time(:microsecond)})
    for _ <- 1..@items, do: receive(do: ({:item, _, _} -> :ok))
    send(enrich, {:waits, owner})
    waits = receive(do: ({:waits, waits} -> waits))

    IO.puts(
      ~s({"items": #{@items}, "enrich_max_wait_ms": #{ms(Enum.max(waits))}, ) <>
        ~s("enrich_mean_wait_ms": #{ms(Enum.sum(waits) / length(waits))}})
    )
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

LoopPipeline.Main.main()
