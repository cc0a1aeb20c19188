# A cart GenServer, a shopper process that waits for a go and then fills the cart, and a
# payment worker that crashes while the cart holds 3 items; the cart then takes 4 more. The
# questions MCP's `process_state` answers (tests/e2e/test_beam_mcp.py): what was the cart's
# state when the payment worker crashed, and whom was the shopper waiting for. Prints its own
# ground truth: the cart's state read right after the crash (`:sys.get_state/1`), the
# shopper's pid and how long it waited for the go and for each call.
defmodule Cart.Server do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, %{items: 0}, name: __MODULE__)
  def add(n), do: GenServer.call(__MODULE__, {:add, n})

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:add, n}, _from, state) do
    Process.sleep(20)
    {:reply, :ok, %{state | items: state.items + n}}
  end
end

defmodule Pay.Worker do
  use GenServer

  def start, do: GenServer.start(__MODULE__, :ready, name: __MODULE__)
  def charge(items), do: GenServer.cast(__MODULE__, {:charge, items})

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_cast({:charge, items}, _state), do: raise("card declined for #{items} items")
end

defmodule Shop.Main do
  def main do
    {:ok, _} = Cart.Server.start_link([])
    main = self()
    shopper = spawn(fn -> shop(main) end)
    # The shopper waits for this go: about 30 ms.
    Process.sleep(30)
    send(shopper, :go)
    {go_us, calls_us} = receive do: ({:shopped, go, calls} -> {go, calls})

    {:ok, pay} = Pay.Worker.start()
    down = Process.monitor(pay)
    Pay.Worker.charge(3)
    receive do: ({:DOWN, ^down, :process, ^pay, _reason} -> :ok)
    at_crash = :sys.get_state(Cart.Server)
    :ok = Cart.Server.add(4)

    IO.puts(
      ~s({"cart_at_crash": "#{inspect(at_crash)}", ) <>
        ~s("cart_at_end": "#{inspect(:sys.get_state(Cart.Server))}", ) <>
        ~s("main": "#{pid(main)}", "shopper": "#{pid(shopper)}", ) <>
        ~s("go_wait_ms": #{ms(go_us)}, "call_ms": [#{Enum.map_join(calls_us, ", ", &ms/1)}]})
    )
  end

  # Waits for the go, then adds 1 and 2 items; reports how long each wait took.
  def shop(main) do
    {go_us, :go} = :timer.tc(fn -> receive do: (:go -> :go) end)
    {first_us, :ok} = :timer.tc(fn -> Cart.Server.add(1) end)
    {second_us, :ok} = :timer.tc(fn -> Cart.Server.add(2) end)
    send(main, {:shopped, go_us, [first_us, second_us]})
  end

  defp pid(p), do: List.to_string(:erlang.pid_to_list(p))
  defp ms(us), do: Float.round(us / 1000, 2)
end

Shop.Main.main()
