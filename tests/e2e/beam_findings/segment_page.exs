# A home page built from three services: the account and the order history are independent,
# the recommendations are asked for the segment the account's answer carried (an atom,
# `:outdoor`). Planted problem: the account and the history could overlap; the recommendations
# need the account's answer. Ground truth: the page as written, and with the account and the
# history asked at once (`Task.async_stream`), the recommendations after them.
defmodule Page.Svc do
  defmacro __using__(ms: ms) do
    quote do
      use GenServer
      def start_link(_), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)
      @impl true
      def init(state), do: {:ok, state}
      @impl true
      def handle_call(request, _from, state) do
        Process.sleep(unquote(ms))
        {:reply, answer(request), state}
      end
    end
  end
end

defmodule Accounts do
  use Page.Svc, ms: 30
  def get(user_id), do: GenServer.call(__MODULE__, {:get, user_id})
  def answer({:get, user_id}), do: %{id: user_id, segment: :outdoor}
end

defmodule History do
  use Page.Svc, ms: 40
  def orders(user_id), do: GenServer.call(__MODULE__, {:orders, user_id})
  def answer({:orders, user_id}), do: [user_id * 100 + 1, user_id * 100 + 2]
end

defmodule Recommendations do
  use Page.Svc, ms: 20
  def for_segment(segment), do: GenServer.call(__MODULE__, {:for_segment, segment})
  def answer({:for_segment, segment}), do: [segment, :tent]
end

defmodule Home do
  def page(user_id) do
    account = Accounts.get(user_id)
    orders = History.orders(user_id)
    recs = Recommendations.for_segment(account.segment)
    {account, orders, recs}
  end

  # What the finding recommends: the two independent calls at once, then the one that needs
  # the account's answer.
  def page_overlapped(user_id) do
    [account, orders] =
      [fn -> Accounts.get(user_id) end, fn -> History.orders(user_id) end]
      |> Task.async_stream(& &1.())
      |> Enum.map(fn {:ok, answer} -> answer end)

    recs = Recommendations.for_segment(account.segment)
    {account, orders, recs}
  end
end

defmodule Home.Main do
  def main do
    for s <- [Accounts, History, Recommendations], do: {:ok, _} = s.start_link([])
    {written, page} = :timer.tc(fn -> Home.page(7) end)
    # Best of three (the first pays for loading Task's code).
    overlapped = Enum.min(for _ <- 1..3, do: elem(:timer.tc(fn -> ^page = Home.page_overlapped(7) end), 0))

    IO.puts(
      ~s({"written_ms": #{ms(written)}, "overlapped_ms": #{ms(overlapped)}, ) <>
        ~s("saving_ms": #{ms(written - overlapped)}})
    )
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

Home.Main.main()
