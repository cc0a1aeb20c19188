# A cache stampede: request handlers read a setting through a cache (an ETS table) and, on a
# miss, load it from the "Settings.Db" GenServer. Ten requests arrive at once while the cache is
# cold, all miss, and all load the same key: the server does the same 15 ms load ten times, each
# handler queued behind the others'. Planted problem: "Settings.Db" serialises its callers, and
# the advice is first to load the key once for all who ask (one key: more processes would each
# load it again). Prints its own ground truth.
defmodule Settings.Db do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, 0, name: __MODULE__)

  def load(key), do: GenServer.call(__MODULE__, {:load, key})

  @impl true
  def init(loads), do: {:ok, loads}

  @impl true
  def handle_call({:load, key}, {caller, _}, loads) do
    {worked, value} = :timer.tc(fn -> Process.sleep(15) && "value of #{key}" end)
    # How long it worked for this caller, kept aside: the program's ground truth.
    :ets.insert(:worked, {caller, worked})
    {:reply, {key, value}, loads + 1}
  end
end

defmodule Settings.Cache do
  def get(key) do
    case :ets.lookup(:settings, key) do
      [{^key, value}] ->
        value

      [] ->
        {^key, value} = Settings.Db.load(key)
        :ets.insert(:settings, {key, value})
        value
    end
  end
end

defmodule Settings.Main do
  @requests 10

  def handle_request(n) do
    {took, _value} = :timer.tc(fn -> Settings.Cache.get(:currency) end)
    worked = :ets.lookup_element(:worked, self(), 2)
    {n, took - worked}
  end

  def main do
    :ets.new(:settings, [:named_table, :public, read_concurrency: true])
    :ets.new(:worked, [:named_table, :public])
    {:ok, _} = Settings.Db.start_link([])
    queued = 1..@requests |> Enum.map(&Task.async(fn -> handle_request(&1) end)) |> Task.await_many()
    max_queued = queued |> Enum.map(&elem(&1, 1)) |> Enum.max()
    IO.puts(~s({"requests": #{@requests}, "max_queued_ms": #{Float.round(max_queued / 1000, 2)}}))
  end
end

Settings.Main.main()
