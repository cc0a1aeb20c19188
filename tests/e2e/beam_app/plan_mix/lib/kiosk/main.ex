defmodule Kiosk.Main do
  @moduledoc "`mix run -e 'Kiosk.Main.run(5)'`: COUNT sales, then the ground truth as JSON."
  def run(count) do
    {:ok, _} = Kiosk.Stock.start_link(Kiosk.Stock)
    {:ok, _} = Kiosk.Ledger.start_link(Kiosk.Ledger)
    items = [%{cost: 3, count: 2}, %{cost: 10, count: 1}]
    sold = for _ <- 1..count, do: Kiosk.sell(items)
    IO.puts(~s({"sells": #{length(sold)}, "total": #{Enum.sum(sold)}}))
  end
end
