# An API front GenServer whose every `handle_call` asks a repository GenServer for the row,
# eight handlers calling the front at once — or, with FRONT_CALLERS_EVERY_MS set, one every so
# many milliseconds, so that requests keep coming while the front waits for the repository.
# Planted problem: "Accounts.Front" serialises its
# callers, but its callback spends almost all of a call waiting for "Accounts.Repo": the queue
# is the repository's to shorten (partitioning the front alone would move it there). Prints
# its own ground truth.
defmodule Accounts.Repo do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, %{}, name: __MODULE__)
  def fetch(id), do: GenServer.call(__MODULE__, {:fetch, id})

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:fetch, id}, _from, state) do
    # The slow part: a query.
    Process.sleep(10)
    {:reply, %{id: id, name: "user-#{id}"}, state}
  end
end

defmodule Accounts.Front do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, %{served: 0}, name: __MODULE__)
  # Replies with the row, how long the front worked on the request and how long of that it
  # waited for the repository (the program's ground truth).
  def account(id), do: GenServer.call(__MODULE__, {:account, id})

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:account, id}, _from, state) do
    t0 = System.monotonic_time(:microsecond)
    {fetching, row} = :timer.tc(fn -> Accounts.Repo.fetch(id) end)
    worked = System.monotonic_time(:microsecond) - t0
    {:reply, {row, worked, fetching}, %{state | served: state.served + 1}}
  end
end

defmodule Accounts.Main do
  @callers 8

  def main do
    {:ok, _} = Accounts.Repo.start_link([])
    {:ok, _} = Accounts.Front.start_link([])

    tasks =
      for n <- 1..@callers do
        Task.async(fn ->
          Process.sleep(n * every_ms())
          :timer.tc(fn -> Accounts.Front.account(n) end)
        end)
      end

    calls = Enum.map(tasks, &Task.await/1)
    queued = for {took, {_row, worked, _}} <- calls, do: took - worked
    worked = for {_, {_, w, _}} <- calls, do: w
    fetching = for {_, {_, _, f}} <- calls, do: f

    IO.puts(
      ~s({"callers": #{@callers}, "max_queued_ms": #{ms(Enum.max(queued))}, ) <>
        ~s("service_ms_mean": #{ms(mean(worked))}, "repo_ms_mean": #{ms(mean(fetching))}})
    )
  end

  defp every_ms, do: String.to_integer(System.get_env("FRONT_CALLERS_EVERY_MS", "0"))
  defp mean(list), do: Enum.sum(list) / length(list)
  defp ms(us), do: Float.round(us / 1000, 2)
end

Accounts.Main.main()
