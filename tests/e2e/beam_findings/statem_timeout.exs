# A door lock as a gen_statem: while it is locked, opening is postponed until the code comes.
# The client gives up after 150 ms and catches its own timeout; the code comes at 400 ms.
# (OTP 25 makes a gen_statem call with a timeout from a proxy process of its own.) Planted
# problem: the call to "Door.Lock" times out while the lock sat idle, the request postponed.
defmodule Door.Lock do
  @behaviour :gen_statem

  def start_link, do: :gen_statem.start_link({:local, __MODULE__}, __MODULE__, :ok, [])

  def open(timeout) do
    :gen_statem.call(__MODULE__, :open, timeout)
  catch
    :exit, {:timeout, _} -> :timed_out
  end

  def enter_code(code), do: :gen_statem.cast(__MODULE__, {:code, code})

  @impl true
  def callback_mode, do: :handle_event_function

  @impl true
  def init(:ok), do: {:ok, :locked, %{code: "1234"}}

  @impl true
  def handle_event({:call, _from}, :open, :locked, _data), do: {:keep_state_and_data, [:postpone]}
  def handle_event({:call, from}, :open, :unlocked, _data), do: {:keep_state_and_data, [{:reply, from, :opened}]}
  def handle_event(:cast, {:code, code}, :locked, %{code: code} = data), do: {:next_state, :unlocked, data}
  def handle_event(:cast, {:code, _}, _state, _data), do: :keep_state_and_data
end

defmodule Door.Main do
  @timeout 150

  def main do
    {:ok, _} = Door.Lock.start_link()
    spawn(fn -> Process.sleep(400); Door.Lock.enter_code("1234") end)
    t0 = System.monotonic_time(:microsecond)
    :timed_out = Door.Lock.open(@timeout)
    waited = (System.monotonic_time(:microsecond) - t0) / 1000
    # Unlocked by then: the postponed request is answered (late), and a new one at once.
    Process.sleep(350)
    :opened = Door.Lock.open(1000)

    IO.puts(~s({"timeout_ms": #{@timeout}, "waited_ms": #{Float.round(waited, 2)}}))
  end
end

Door.Main.main()
