# An OTP program for tests/e2e/test_beam.py's lifecycle test: a supervisor (one_for_one) whose
# worker crashes on its first two starts and works on the third, a process monitored until it
# exits, two processes linked (one taken down by the other's exit) and a third that links and
# unlinks, a process trapping a linked child's exit, and two gen_statem machines — a door in
# state_functions mode (locked/open) and a switch in handle_event_function mode. It prints its
# own ground truth as JSON on its last line. No code of devtrace's in it.

defmodule Lifecycle.Flaky do
  # Started under the supervisor; crashes after starting while fewer than three starts have
  # been made (the count is kept outside it, in a public ETS table).
  use GenServer

  def start_link(table), do: GenServer.start_link(__MODULE__, table, name: __MODULE__)
  def ping, do: GenServer.call(__MODULE__, :ping)

  @impl true
  def init(table) do
    attempt = :ets.update_counter(table, :attempts, 1)
    :ets.insert(table, {{:pid, attempt}, inspect(self())})
    {:ok, attempt, {:continue, :work}}
  end

  @impl true
  def handle_continue(:work, attempt) when attempt < 3, do: raise("flaky start #{attempt}")
  def handle_continue(:work, attempt), do: {:noreply, attempt}

  @impl true
  def handle_call(:ping, _from, attempt), do: {:reply, attempt, attempt}
end

defmodule Lifecycle.Door do
  # state_functions: the state is the callback's name.
  @behaviour :gen_statem

  def start_link(code, label), do: :gen_statem.start_link({:local, __MODULE__}, __MODULE__, {code, label}, [])
  def press(digit), do: :gen_statem.call(__MODULE__, {:button, digit})
  def lock, do: :gen_statem.call(__MODULE__, :lock)

  @impl true
  def callback_mode, do: :state_functions

  @impl true
  def init({code, label}), do: {:ok, :locked, %{code: code, input: [], opened: 0, label: label}}

  def locked({:call, from}, {:button, digit}, data) do
    input = data.input ++ [digit]

    cond do
      input == data.code ->
        {:next_state, :open, %{data | input: [], opened: data.opened + 1}, [{:reply, from, :opened}]}

      length(input) >= length(data.code) ->
        {:keep_state, %{data | input: []}, [{:reply, from, :wrong}]}

      true ->
        {:keep_state, %{data | input: input}, [{:reply, from, :more}]}
    end
  end

  def open({:call, from}, :lock, data), do: {:next_state, :locked, data, [{:reply, from, :locked}]}
  def open({:call, from}, {:button, _}, _data), do: {:keep_state_and_data, [{:reply, from, :already_open}]}
end

defmodule Lifecycle.Switch do
  # handle_event_function: one callback, the state an argument.
  @behaviour :gen_statem

  def start_link, do: :gen_statem.start_link(__MODULE__, :off, [])
  def flip(pid), do: :gen_statem.call(pid, :flip)

  @impl true
  def callback_mode, do: :handle_event_function

  @impl true
  def init(state), do: {:ok, state, 0}

  @impl true
  def handle_event({:call, from}, :flip, :off, flips), do: {:next_state, :on, flips + 1, [{:reply, from, :on}]}
  def handle_event({:call, from}, :flip, :on, flips), do: {:next_state, :off, flips + 1, [{:reply, from, :off}]}
end

defmodule Lifecycle.Procs do
  def hold do
    receive do
      :stop -> :ok
    end
  end

  def link_and_hold(to, parent) do
    Process.link(to)
    send(parent, {:linked, self()})
    hold()
  end

  def link_and_unlink(to, parent) do
    Process.link(to)
    Process.unlink(to)
    send(parent, {:unlinked, self()})
    hold()
  end

  def exit_when_told(reason) do
    receive do
      :go -> exit(reason)
    end
  end

  def trap(parent) do
    Process.flag(:trap_exit, true)
    child = spawn_link(fn -> exit_when_told(:oops) end)
    send(child, :go)

    receive do
      {:EXIT, ^child, :oops} -> send(parent, {:trapped, self(), child})
    end
  end
end

defmodule Lifecycle.Main do
  @hostile "\e[2J\e]0;pwned\a<script>alert(1)</script>"

  def main do
    parent = self()
    table = :ets.new(:flaky, [:public, :set])
    :ets.insert(table, {:attempts, 0})

    {:ok, _sup} =
      Supervisor.start_link([{Lifecycle.Flaky, table}], strategy: :one_for_one, name: Lifecycle.Sup)

    attempt = wait_for_third(table)

    # A monitor: the watched process's exit is the DOWN's cause.
    {victim, ref} = spawn_monitor(fn -> Lifecycle.Procs.exit_when_told(:boom) end)
    send(victim, :go)
    receive(do: ({:DOWN, ^ref, :process, ^victim, :boom} -> :ok))

    # Links: `linked` dies of `anchor`'s exit; `unlinker` links and unlinks, and lives on.
    anchor = spawn(fn -> Lifecycle.Procs.hold() end)
    Process.register(anchor, String.to_atom("anchor\e[31m\nname"))
    linked = spawn(fn -> Lifecycle.Procs.link_and_hold(anchor, parent) end)
    receive(do: ({:linked, ^linked} -> :ok))
    unlinker = spawn(fn -> Lifecycle.Procs.link_and_unlink(anchor, parent) end)
    receive(do: ({:unlinked, ^unlinker} -> :ok))
    linked_ref = Process.monitor(linked)
    Process.exit(anchor, :cut)
    receive(do: ({:DOWN, ^linked_ref, :process, ^linked, :cut} -> :ok))
    send(unlinker, :stop)

    # A process trapping exits hears of its linked child's exit as a message.
    trapper = spawn(fn -> Lifecycle.Procs.trap(parent) end)
    trapped_child = receive(do: ({:trapped, ^trapper, child} -> child))

    {:ok, _} = Lifecycle.Door.start_link([1, 2], @hostile)
    replies = for d <- [1, 9, 1, 2], do: Lifecycle.Door.press(d)
    opened = Lifecycle.Door.press(5)
    locked = Lifecycle.Door.lock()

    {:ok, switch} = Lifecycle.Switch.start_link()
    flips = for _ <- 1..3, do: Lifecycle.Switch.flip(switch)

    pids = for n <- 1..attempt, do: :ets.lookup_element(table, {:pid, n}, 2)

    IO.puts(
      Enum.join(
        [
          ~s({"supervisor": "Lifecycle.Sup", "attempts": #{attempt}, "crashes": #{attempt - 1}),
          ~s("workers": [#{Enum.map_join(pids, ", ", &~s("#{&1}"))}]),
          ~s("victim": "#{inspect(victim)}"),
          ~s("linked": "#{inspect(linked)}", "unlinker": "#{inspect(unlinker)}"),
          ~s("trapper": "#{inspect(trapper)}", "trapped_child": "#{inspect(trapped_child)}"),
          ~s("door_replies": [#{Enum.map_join(replies ++ [opened, locked], ", ", &~s("#{&1}"))}]),
          ~s("switch": "#{inspect(switch)}", "flips": [#{Enum.map_join(flips, ", ", &~s("#{&1}"))}]})
        ],
        ", "
      )
    )
  end

  defp wait_for_third(table) do
    case :ets.lookup_element(table, :attempts, 2) do
      n when n >= 3 -> Lifecycle.Flaky.ping()
      _ ->
        Process.sleep(5)
        wait_for_third(table)
    end
  end
end

Lifecycle.Main.main()
