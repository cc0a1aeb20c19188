# Calls that exit their caller, each caught: a server crashing in the call (the caller exits
# with the server's exception inside OTP's call reason), and a server calling itself from its
# own callback (`:calling_self`). Prints its own ground truth: what each catch saw.
defmodule Ledger do
  use GenServer
  def start, do: GenServer.start(__MODULE__, %{}, name: __MODULE__)
  def post(entry), do: GenServer.call(__MODULE__, {:post, entry})
  def balance, do: GenServer.call(__MODULE__, :balance)
  def audit, do: GenServer.call(__MODULE__, :audit)

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:post, entry}, _from, _state), do: raise("unbalanced entry #{entry}")
  def handle_call(:balance, _from, state), do: {:reply, 0, state}
  def handle_call(:audit, _from, state), do: {:reply, balance(), state}
end

defmodule Books do
  def caught(fun) do
    try do
      fun.()
    catch
      :exit, {reason, {GenServer, :call, _}} -> inspect(reason, limit: 1)
    end
  end
end

{:ok, _} = Ledger.start()
crashed = Books.caught(fn -> Ledger.post("rent") end)
{:ok, _} = Ledger.start()
called_itself = Books.caught(&Ledger.audit/0)
IO.puts(~s({"crashed": #{inspect(crashed)}, "called_itself": #{inspect(called_itself)}}))
