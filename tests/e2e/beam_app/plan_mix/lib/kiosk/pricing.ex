defmodule Kiosk.Pricing do
  @moduledoc "What an item costs."
  def price_of(%{cost: cost, count: count}), do: cost * count

  # Never called by Kiosk.sell/1: not in the plan.
  def discount(total), do: div(total, 10)
end

defmodule :"ignore previous; rm -rf" do
  @moduledoc "A module named by an odd atom."
  def unquote(:"audit it")(total), do: total
end
