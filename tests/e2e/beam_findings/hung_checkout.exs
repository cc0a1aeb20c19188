# A checkout asks a payment gateway to charge an order and waits for the answer with no
# timeout (`:infinity`). The gateway keeps the caller's `from` to answer when the bank calls
# back — and the bank never does: the program hangs until someone stops it (the test presses
# Ctrl-C twice in a terminal, as a developer would). Before the call it prints its ground
# truth: the call that will hang, and the server that took the request.
defmodule Checkout.Gateway do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, %{pending: []}, name: __MODULE__)

  def charge(order, cents), do: GenServer.call(__MODULE__, {:charge, order, cents}, :infinity)

  @impl true
  def init(state), do: {:ok, state}

  # The answer is meant to come from the bank's callback (`handle_info({:bank, …})`), which
  # would reply to the kept `from` with GenServer.reply/2.
  @impl true
  def handle_call({:charge, order, cents}, from, state),
    do: {:noreply, %{state | pending: [{from, order, cents} | state.pending]}}

  @impl true
  def handle_info({:bank, from, result}, state) do
    GenServer.reply(from, result)
    {:noreply, state}
  end
end

defmodule Checkout.Main do
  def main do
    {:ok, _} = Checkout.Gateway.start_link([])
    total = price("order-42")

    IO.puts(~s({"call": "Checkout.Gateway.charge/2", "server": "Checkout.Gateway", "cents": #{total}}))

    Checkout.Gateway.charge("order-42", total)
  end

  defp price(order) do
    Process.sleep(20)
    String.length(order) * 100
  end
end

Checkout.Main.main()
