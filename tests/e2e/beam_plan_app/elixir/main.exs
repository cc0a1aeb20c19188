# `elixir main.exs`: five checkouts, then the ground truth as JSON.
Code.require_file("shop.ex", __DIR__)

{:ok, _} = Shop.Inventory.start_link(1_000_000)
basket = [%{cost: 3, count: 2}, %{cost: 10, count: 1}]
results = for _ <- 1..5, do: Shop.checkout(basket)
IO.puts(~s({"checkouts": #{Shop.Report.summary(results)}}))
