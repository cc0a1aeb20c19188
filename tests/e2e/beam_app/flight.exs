# The BEAM flight recorder's test program (tests/e2e/test_beam_flight.py): a supervised
# GenServer, `Flight.Counter`, started long before the end; an early phase of
# `Flight.Counter.early_tick/1` calls (none may be in a 1-second window); a late phase of
# `Flight.Counter.late_tick/1` calls every 10 ms; then the ending the first argument names:
# `exit` (the script ends), `raise` (an exception ends `elixir script.exs`), `kill` (the VM
# sends itself SIGKILL), `term` (SIGTERM: the VM stops as `init:stop/0` does). Its ground truth, printed before it ends: how many calls of each
# phase it made, and for each late call (counting down to 1) how many microseconds before the
# end it began.
#
#   elixir flight.exs ENDING EARLY_MS EARLY_PAUSE_MS
defmodule Flight.Counter do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, 0, name: __MODULE__)
  def early_tick(n), do: GenServer.call(__MODULE__, {:early, n})
  def late_tick(n), do: GenServer.call(__MODULE__, {:late, n})

  @impl true
  def init(count), do: {:ok, count}

  @impl true
  def handle_call({_phase, n}, _from, count), do: {:reply, count + n, count + n}
end

defmodule Flight.Main do
  @late_calls 150

  def now, do: System.monotonic_time(:microsecond)

  def early(deadline, pause, made) do
    if now() < deadline do
      Flight.Counter.early_tick(1)
      if pause > 0, do: Process.sleep(pause)
      early(deadline, pause, made + 1)
    else
      made
    end
  end

  def late(0, began), do: began

  def late(n, began) do
    at = now()
    Flight.Counter.late_tick(n)
    Process.sleep(10)
    late(n - 1, [{n, at} | began])
  end

  def run([ending, early_ms, pause_ms]) do
    {:ok, _} = Supervisor.start_link([Flight.Counter], strategy: :one_for_one, name: Flight.Sup)
    early = early(now() + String.to_integer(early_ms) * 1000, String.to_integer(pause_ms), 0)
    began = late(@late_calls, [])
    ended = now()
    # JSON by hand: OTP 25 has no encoder, and nothing from Hex is used.
    befores = Enum.map_join(began, ", ", fn {n, at} -> ~s("#{n}": #{ended - at}) end)
    IO.puts(~s({"early": #{early}, "late": #{@late_calls}, "late_us_before_end": {#{befores}}}))
    # The line reaches stdout before the VM halts or is killed (a halt after an exception does
    # not wait for the output port).
    Process.sleep(50)
    finish(ending)
  end

  def finish("exit"), do: :ok
  def finish("raise"), do: raise("flight boom")
  def finish("kill"), do: System.cmd("kill", ["-9", System.pid()])

  def finish("term") do
    System.cmd("kill", ["-TERM", System.pid()])
    Process.sleep(:infinity)
  end
end

Flight.Main.run(System.argv())
