# A small OTP program for tests/e2e/test_beam.py: a GenServer behind several client processes,
# a process registered under a hostile name that sends a hostile message (which the server keeps
# in its state), and a process that crashes. It counts what it does and prints the count as JSON
# on its last line (the ground truth the test checks the recording against). No code of
# devtrace's in it.

defmodule Counter.Server do
  use GenServer

  def start_link(secret) do
    GenServer.start_link(__MODULE__, %{total: 0, password: secret}, name: __MODULE__)
  end

  def add(n), do: GenServer.call(__MODULE__, {:add, n})
  def note(text), do: GenServer.cast(__MODULE__, {:note, text})
  def total, do: GenServer.call(__MODULE__, :total)

  @impl true
  def init(state), do: {:ok, state}

  @impl true
  def handle_call({:add, n}, _from, state) do
    # Some work, so clients wait for the server.
    Process.sleep(2)
    total = state.total + n
    {:reply, {:ok, total}, %{state | total: total}}
  end

  def handle_call(:total, _from, state), do: {:reply, state.total, state}

  @impl true
  def handle_cast({:note, text}, state), do: {:noreply, Map.put(state, :last_note, text)}
end

defmodule Counter.Client do
  def run(id, adds) do
    for k <- 1..adds, do: {:ok, _} = Counter.Server.add(id * 100 + k)
    :done
  end
end

defmodule Counter.Crasher do
  def crash(reason), do: raise(RuntimeError, "crashed: " <> reason)
end

defmodule Counter.Main do
  @clients 3
  @adds 4
  @hostile "\e[2J\e]0;pwned\a<script>alert(1)</script>"

  def main do
    {:ok, _} = Counter.Server.start_link("hunter2")
    parent = self()

    clients =
      for id <- 1..@clients do
        spawn(fn -> send(parent, {:finished, self(), Counter.Client.run(id, @adds)}) end)
      end

    for pid <- clients, do: receive(do: ({:finished, ^pid, :done} -> :ok))

    # A process whose registered name and message are hostile text.
    evil = spawn(fn -> hostile_sender() end)
    Process.register(evil, String.to_atom("evil\e[31m" <> "\nname"))
    ref = Process.monitor(evil)
    send(evil, :go)
    receive(do: ({:DOWN, ^ref, :process, _, :normal} -> :ok))

    {crasher, crash_ref} = spawn_monitor(fn -> Counter.Crasher.crash("on purpose") end)
    receive(do: ({:DOWN, ^crash_ref, :process, ^crasher, {%RuntimeError{}, _}} -> :ok))

    total = Counter.Server.total()

    IO.puts(
      ~s({"clients": #{@clients}, "adds": #{@clients * @adds}, "total": #{total}, ) <>
        ~s("crasher": "#{inspect(crasher)}"})
    )
  end

  def hostile_sender do
    receive do
      :go -> Counter.Server.note(@hostile)
    end
  end
end

Counter.Main.main()
