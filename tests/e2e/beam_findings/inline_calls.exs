# A home page asking three servers with `GenServer.call/2` written inline, in the one function
# that builds the page (no client function of the server's own): the user, the latest news
# (`{:latest, 5}`, the same five on every page) and the user's messages, all independent;
# then recommendations for the user's segment (a field of the first answer). Planted problem:
# the first three could overlap; the last needs the first's answer and must not be grouped.
defmodule Backend do
  # A server answering `{tag, arg}` after `ms` of work, its state untouched.
  use GenServer
  def start_link(name, ms), do: GenServer.start_link(__MODULE__, ms, name: name)
  @impl true
  def init(ms), do: {:ok, ms}
  @impl true
  def handle_call({:get, id}, _from, ms), do: reply(ms, %{id: id, segment: "seg-#{rem(id, 3)}"})
  def handle_call({:latest, n}, _from, ms), do: reply(ms, Enum.to_list(1..n))
  def handle_call({:unread, id}, _from, ms), do: reply(ms, [id * 10 + 1])
  def handle_call({:for_segment, segment}, _from, ms), do: reply(ms, ["#{segment} boots"])

  defp reply(ms, answer) do
    Process.sleep(ms)
    {:reply, {:ok, answer}, ms}
  end
end

defmodule Home do
  def page(user_id) do
    t0 = System.monotonic_time(:microsecond)
    {:ok, user} = GenServer.call(:users, {:get, user_id})
    {:ok, news} = GenServer.call(:news, {:latest, 5})
    {:ok, inbox} = GenServer.call(:inbox, {:unread, user_id})
    three = System.monotonic_time(:microsecond) - t0
    {:ok, picks} = GenServer.call(:recs, {:for_segment, user.segment})
    {three, {user, news, inbox, picks}}
  end
end

defmodule Home.Main do
  @pages 1..3

  def main do
    for {name, ms} <- [users: 30, news: 25, inbox: 20, recs: 15], do: {:ok, _} = Backend.start_link(name, ms)
    three = Enum.sum(for id <- @pages, do: elem(Home.page(id), 0))

    # The same three calls overlapped, page by page, best of three (the first pays for loading
    # Task's code).
    overlapped = Enum.min(for _ <- 1..3, do: Enum.sum(for id <- @pages, do: overlapped(id)))

    IO.puts(
      ~s({"three_one_after_another_ms": #{ms(three)}, ) <>
        ~s("three_overlapped_ms": #{ms(overlapped)}, "saving_ms": #{ms(three - overlapped)}})
    )
  end

  defp overlapped(id) do
    {took, _} =
      :timer.tc(fn ->
        Task.await_many([
          Task.async(fn -> GenServer.call(:users, {:get, id}) end),
          Task.async(fn -> GenServer.call(:news, {:latest, 5}) end),
          Task.async(fn -> GenServer.call(:inbox, {:unread, id}) end)
        ])
      end)

    took
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

Home.Main.main()
