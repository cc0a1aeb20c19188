# A dashboard asking servers whose client functions are named by what they return (no verb
# says they read): a profile, recent orders and a wishlist, all independent; then
# recommendations for the profile's segment (a field of the first answer) and a shipping
# quote for a total computed from the orders. Planted problem: the first three could overlap;
# the last two need earlier answers and must not be grouped with them.
defmodule Served do
  # A server answering after `ms` of work, its state untouched.
  defmacro __using__(ms: ms) do
    quote do
      use GenServer
      def start_link(_), do: GenServer.start_link(__MODULE__, %{served_by: __MODULE__}, name: __MODULE__)
      @impl true
      def init(state), do: {:ok, state}
      @impl true
      def handle_call({:ask, question}, _from, state) do
        Process.sleep(unquote(ms))
        {:reply, answer(question), state}
      end

      defp ask(question), do: GenServer.call(__MODULE__, {:ask, question})
    end
  end
end

defmodule Accounts do
  use Served, ms: 30
  def profile(user_id), do: ask({:profile, user_id})
  defp answer({:profile, id}), do: %{id: id, segment: "outdoor", country: "fr"}
end

defmodule History do
  use Served, ms: 25
  def recent_orders(user_id), do: ask({:recent, user_id})
  defp answer({:recent, id}), do: [id * 100 + 17, id * 100 + 29]
end

defmodule Wishlist do
  use Served, ms: 20
  def items(user_id), do: ask({:items, user_id})
  defp answer({:items, _id}), do: ["tent", "stove"]
end

defmodule Recommendations do
  use Served, ms: 15
  def for_segment(segment), do: ask({:segment, segment})
  defp answer({:segment, segment}), do: ["#{segment} boots"]
end

defmodule Shipping do
  use Served, ms: 10
  def rate(total), do: ask({:rate, total})
  defp answer({:rate, total}), do: div(total, 50)
end

defmodule Dashboard do
  def build(user_id) do
    t0 = System.monotonic_time(:microsecond)
    profile = Accounts.profile(user_id)
    orders = History.recent_orders(user_id)
    wishes = Wishlist.items(user_id)
    three = System.monotonic_time(:microsecond) - t0
    picks = Recommendations.for_segment(profile.segment)
    shipping = Shipping.rate(Enum.sum(orders))
    {three, {profile, orders, wishes, picks, shipping}}
  end
end

defmodule Dashboard.Main do
  def main do
    for s <- [Accounts, History, Wishlist, Recommendations, Shipping], do: {:ok, _} = s.start_link([])
    {three, _} = Dashboard.build(7)

    # The same three calls overlapped, best of three (the first pays for loading Task's code).
    overlapped = Enum.min(for _ <- 1..3, do: overlapped())

    IO.puts(
      ~s({"three_one_after_another_ms": #{ms(three)}, ) <>
        ~s("three_overlapped_ms": #{ms(overlapped)}, "saving_ms": #{ms(three - overlapped)}})
    )
  end

  defp overlapped do
    {took, _} =
      :timer.tc(fn ->
        Task.await_many([
          Task.async(fn -> Accounts.profile(7) end),
          Task.async(fn -> History.recent_orders(7) end),
          Task.async(fn -> Wishlist.items(7) end)
        ])
      end)

    took
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

Dashboard.Main.main()
