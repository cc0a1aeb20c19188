defmodule Kiosk.Stock do
  @moduledoc "The stock: each request takes from it."
  use Kiosk.Server, initial: 1_000_000, log: Kiosk.Log

  @impl true
  def handle_call({:request, amount}, _from, stock), do: {:reply, :ok, stock - amount}
end

defmodule Kiosk.Ledger do
  @moduledoc "The ledger: each request is an entry. Its log module is the config's."
  @log Application.compile_env(:kiosk, :log, Kiosk.Log)
  use Kiosk.Server, initial: [], log: @log

  @impl true
  def handle_call({:request, amount}, _from, entries), do: {:reply, :ok, [amount | entries]}
end

defmodule Kiosk.Log do
  @moduledoc "Where the servers' clients note what they ask."
  def note(event), do: event
end
