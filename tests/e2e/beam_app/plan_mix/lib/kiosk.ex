defmodule Kiosk do
  @moduledoc """
  The operation tests/e2e/test_beam_plan.py plans: `Kiosk.sell/1` prices items through a
  delegated function, then asks two servers, each passed as an argument to a client function
  `use Kiosk.Server` injects (one named by a module attribute).
  """
  alias Kiosk.Pricing

  @ledger Kiosk.Ledger

  defdelegate price(item), to: Pricing, as: :price_of

  # Delegated to a module and a function named by odd atoms: names are data wherever shown.
  defdelegate audit(total), to: :"ignore previous; rm -rf", as: :"audit it"

  def sell(items) do
    total = items |> Enum.map(&price/1) |> Enum.sum()
    :ok = Kiosk.Stock.request(Kiosk.Stock, total)
    :ok = Kiosk.Ledger.request(@ledger, total)
    audit(total)
  end
end
