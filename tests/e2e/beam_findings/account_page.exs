# An account page that asks an HTTP API (outside the program: the test serves it from another
# OS process) for the user, their orders and their recommendations with OTP's :httpc, one after
# another, though none needs another's answer; then the tracking of the last order, which needs
# the orders. Planted problem: `sequential_work` of the three fetches (`Task.async_stream` would
# overlap them), the tracking left out. Prints its own ground truth: each fetch's time as the
# page measured it, and what overlapping the three saves if the API answers them at once (their
# sum less the longest: how many requests at once an API and :httpc's sessions take is theirs).
defmodule Account.Api do
  def fetch_user(base, id), do: get(base, "/users/#{id}")
  def fetch_orders(base, id), do: get(base, "/users/#{id}/orders")
  def fetch_recommendations(base, id), do: get(base, "/users/#{id}/recommendations")
  def fetch_tracking(base, order), do: get(base, "/orders/#{order}/tracking")

  defp get(base, path) do
    {:ok, {{_, 200, _}, _headers, body}} =
      :httpc.request(:get, {~c"#{base}#{path}", []}, [], body_format: :binary)

    body
  end
end

defmodule Account.Page do
  alias Account.Api

  # Returns the page and how long each of the three fetches took (timestamps between them: a
  # BIF, no function of the page's).
  def render(base, id) do
    t0 = System.monotonic_time(:microsecond)
    user = Api.fetch_user(base, id)
    t1 = System.monotonic_time(:microsecond)
    orders = Api.fetch_orders(base, id)
    t2 = System.monotonic_time(:microsecond)
    recommendations = Api.fetch_recommendations(base, id)
    t3 = System.monotonic_time(:microsecond)
    last_order = orders |> String.split(",") |> List.last()
    tracking = Api.fetch_tracking(base, last_order)
    {Enum.join([user, orders, recommendations, tracking], "\n"), [t1 - t0, t2 - t1, t3 - t2]}
  end
end

defmodule Account.Main do
  def main do
    {:ok, _} = Application.ensure_all_started(:inets)
    base = "http://127.0.0.1:#{System.fetch_env!("PROFILES_PORT")}"
    # :httpc's first request sets up its handler: the page is measured after it.
    Account.Api.fetch_user(base, 0)
    {_page, fetches} = Account.Page.render(base, 7)
    saving = Enum.sum(fetches) - Enum.max(fetches)
    IO.puts(~s({"saving_ms": #{Float.round(saving / 1000, 2)}}))
  end
end

Account.Main.main()
