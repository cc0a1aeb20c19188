# A pipeline of three processes: parse → enrich → store. Enrich is slow (~10 ms an item) while
# items arrive every ~1 ms, so its mailbox backs up. Planted problem: "Pipeline.Enrich" falls
# behind: items wait in its mailbox. Each item carries the time it was handed on, so every stage
# measures how long its items waited before it started on them: the ground truth.
defmodule Pipeline.Stage do
  defmacro __using__(work_ms: work_ms, next: next) do
    quote do
      use GenServer
      def start_link(owner), do: GenServer.start_link(__MODULE__, owner, name: __MODULE__)
      def push(item), do: GenServer.cast(__MODULE__, {:item, item, System.monotonic_time(:microsecond)})

      @impl true
      def init(owner), do: {:ok, %{owner: owner, done: 0, waits: []}}

      @impl true
      def handle_cast({:item, item, sent_at}, state) do
        waited = System.monotonic_time(:microsecond) - sent_at
        Process.sleep(unquote(work_ms))
        forward(unquote(next), item, state.owner)
        {:noreply, %{state | done: state.done + 1, waits: [waited | state.waits]}}
      end

      @impl true
      def handle_call(:waits, _from, state), do: {:reply, state.waits, state}

      defp forward(nil, item, owner), do: send(owner, {:stored, item})
      defp forward(next, item, _owner), do: next.push(item)
    end
  end
end

defmodule Pipeline.Store do
  use Pipeline.Stage, work_ms: 0, next: nil
end

defmodule Pipeline.Enrich do
  use Pipeline.Stage, work_ms: 10, next: Pipeline.Store
end

defmodule Pipeline.Parse do
  use Pipeline.Stage, work_ms: 1, next: Pipeline.Enrich
end

defmodule Pipeline.Main do
  @items 40

  def main do
    for stage <- [Pipeline.Store, Pipeline.Enrich, Pipeline.Parse], do: {:ok, _} = stage.start_link(self())
    for n <- 1..@items, do: Pipeline.Parse.push("item-#{n}")
    for _ <- 1..@items, do: receive(do: ({:stored, _} -> :ok))
    waits = GenServer.call(Pipeline.Enrich, :waits)

    IO.puts(
      ~s({"items": #{@items}, "enrich_max_wait_ms": #{ms(Enum.max(waits))}, ) <>
        ~s("enrich_mean_wait_ms": #{ms(Enum.sum(waits) / length(waits))}})
    )
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

Pipeline.Main.main()
