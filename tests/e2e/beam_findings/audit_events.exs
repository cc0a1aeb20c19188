# An audit trail as an OTP event manager (`:gen_event`) with two handlers: one counts the
# orders, one writes each to a slow sink (8 ms). The shop notifies each order as it is placed
# (`:gen_event.notify/2` waits for nothing); at the end it asks the counter how many it saw and
# waits behind the backlog. Planted problem: "audit" falls behind its senders (a mailbox
# backlog: each notification runs both handlers, the sink's 8 ms the slow part). Prints its
# own ground truth: each notification carries its send time, and the first handler measures
# how long it waited in the mailbox.
defmodule Audit.Counter do
  @behaviour :gen_event
  def init(_), do: {:ok, %{seen: 0, waits: []}}

  def handle_event({:order, _id, sent}, s) do
    {:ok, %{s | seen: s.seen + 1, waits: [System.monotonic_time(:microsecond) - sent | s.waits]}}
  end

  def handle_call(:report, s), do: {:ok, {s.seen, s.waits}, s}
  def handle_info(_, s), do: {:ok, s}
end

defmodule Audit.Sink do
  @behaviour :gen_event
  def init(_), do: {:ok, 0}

  def handle_event({:order, _id, _sent}, written) do
    Process.sleep(8)
    {:ok, written + 1}
  end

  def handle_call(_, s), do: {:ok, :ok, s}
  def handle_info(_, s), do: {:ok, s}
end

defmodule Audit.Main do
  @orders 30

  def main do
    {:ok, _} = :gen_event.start_link({:local, :audit})
    :ok = :gen_event.add_handler(:audit, Audit.Counter, [])
    :ok = :gen_event.add_handler(:audit, Audit.Sink, [])
    for id <- 1..@orders, do: :gen_event.notify(:audit, {:order, id, System.monotonic_time(:microsecond)})
    {seen, waits} = :gen_event.call(:audit, Audit.Counter, :report, 30_000)

    IO.puts(
      ~s({"items": #{seen}, "enrich_max_wait_ms": #{ms(Enum.max(waits))}, ) <>
        ~s("enrich_mean_wait_ms": #{ms(Enum.sum(waits) / length(waits))}})
    )
  end

  defp ms(us), do: Float.round(us / 1000, 2)
end

Audit.Main.main()
