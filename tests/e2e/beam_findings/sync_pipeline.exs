# A pipeline of GenServers handing each item on with GenServer.call, so a stage waits until
# the next took the item (back-pressure, no mailbox to back up): parse -> enrich -> store,
# enrich slow (8 ms an item). The program feeds 30 items one at a time. Planted problem: one
# call per item where the stages could take the items as one batch, and most of each call's
# time is enrich's. Ground truth: the loop's time, and the time parse spent in its calls to
# enrich, as parse measured it.
defmodule SyncPipe.Stage do
  use GenServer

  def start_link(name, ms, next),
    do: GenServer.start_link(__MODULE__, %{ms: ms, next: next, handing_on_us: 0}, name: name)

  def push(stage, item), do: GenServer.call(stage, {:item, item}, :infinity)
  def handing_on_us(stage), do: GenServer.call(stage, :handing_on_us)

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:item, item}, _from, %{ms: ms, next: next} = state) do
    if ms > 0, do: Process.sleep(ms)

    case next do
      nil ->
        {:reply, :ok, state}

      next ->
        {us, :ok} = :timer.tc(fn -> push(next, item) end)
        {:reply, :ok, %{state | handing_on_us: state.handing_on_us + us}}
    end
  end

  def handle_call(:handing_on_us, _from, state), do: {:reply, state.handing_on_us, state}
end

defmodule SyncPipe.Main do
  @items 30

  def main do
    {:ok, _} = SyncPipe.Stage.start_link(:store, 1, nil)
    {:ok, _} = SyncPipe.Stage.start_link(:enrich, 8, :store)
    {:ok, _} = SyncPipe.Stage.start_link(:parse, 1, :enrich)
    {loop, _} = :timer.tc(fn -> Enum.each(1..@items, &SyncPipe.Stage.push(:parse, &1)) end)

    IO.puts(
      ~s({"items": #{@items}, "loop_ms": #{Float.round(loop / 1000, 2)}, ) <>
        ~s("parse_waited_ms": #{Float.round(SyncPipe.Stage.handing_on_us(:parse) / 1000, 2)}})
    )
  end
end

SyncPipe.Main.main()
