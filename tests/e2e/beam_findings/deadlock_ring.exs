# A deadlock through three servers of a booking service. Booking a room, the calendar holds
# the slot and asks the rooms service to assign a room; to assign one, the rooms service asks
# payments whether a deposit is needed; payments, to price the deposit, asks the calendar how
# long the stay is. Every call waits with no timeout, each made from inside the caller's own
# `handle_call`: Calendar → Rooms → Payments → Calendar, and the program hangs until the test
# presses Ctrl-C twice. Before the first call it prints its ground truth: the call that closes
# the ring, and each server's call on the way.
defmodule Booking.Calendar do
  use GenServer

  def start_link(nights), do: GenServer.start_link(__MODULE__, nights, name: __MODULE__)
  def book(guest, from, to), do: GenServer.call(__MODULE__, {:book, guest, from, to}, :infinity)
  def nights(guest), do: GenServer.call(__MODULE__, {:nights, guest}, :infinity)

  @impl true
  def init(nights), do: {:ok, nights}

  @impl true
  def handle_call({:book, guest, from, to}, _from, nights) do
    nights = Map.put(nights, guest, Date.diff(to, from))
    {:reply, Booking.Rooms.assign(guest), nights}
  end

  def handle_call({:nights, guest}, _from, nights), do: {:reply, Map.fetch!(nights, guest), nights}
end

defmodule Booking.Rooms do
  use GenServer

  def start_link(free), do: GenServer.start_link(__MODULE__, free, name: __MODULE__)
  def assign(guest), do: GenServer.call(__MODULE__, {:assign, guest}, :infinity)

  @impl true
  def init(free), do: {:ok, free}

  @impl true
  def handle_call({:assign, guest}, _from, [room | free]) do
    deposit = Booking.Payments.deposit(guest)
    {:reply, {room, deposit}, free}
  end
end

defmodule Booking.Payments do
  use GenServer

  def start_link(rate), do: GenServer.start_link(__MODULE__, rate, name: __MODULE__)
  def deposit(guest), do: GenServer.call(__MODULE__, {:deposit, guest}, :infinity)

  @impl true
  def init(rate), do: {:ok, rate}

  @impl true
  def handle_call({:deposit, guest}, _from, rate),
    do: {:reply, rate * Booking.Calendar.nights(guest), rate}
end

defmodule Booking.Main do
  def main do
    {:ok, _} = Booking.Calendar.start_link(%{})
    {:ok, _} = Booking.Rooms.start_link([101, 102, 204])
    {:ok, _} = Booking.Payments.start_link(40)

    IO.puts(~s({"closing_call": "Booking.Calendar.nights/1", "server": "Booking.Calendar", "waits": [["Booking.Rooms.assign/1", "Booking.Rooms"], ["Booking.Payments.deposit/1", "Booking.Payments"]]}))

    Booking.Calendar.book("ada", ~D[2026-12-01], ~D[2026-12-04])
  end
end

Booking.Main.main()
