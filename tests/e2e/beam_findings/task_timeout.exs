# Task.await past its timeout: each report awaits a lookup task for 100 ms, the lookup takes
# 250 ms, and the report's caller catches the timeout exit and falls back. Planted problem: three
# awaits of the lookup task time out; meanwhile the task was running the lookup. The program ends
# while the last two tasks still run (nothing stops them: Task.await leaves them running).
defmodule Report do
  @lookup_ms 250

  def slow_lookup(id) do
    Process.sleep(@lookup_ms)
    {:ok, id * 2}
  end

  def build(id, timeout) do
    task = Task.async(fn -> slow_lookup(id) end)
    Task.await(task, timeout)
  end

  def build_or_default(id, timeout) do
    try do
      build(id, timeout)
    catch
      :exit, {:timeout, _} -> :fallback
    end
  end
end

defmodule Report.Main do
  @timeout 100

  def main do
    waits =
      for id <- 1..3 do
        t0 = System.monotonic_time(:microsecond)
        :fallback = Report.build_or_default(id, @timeout)
        {t0, System.monotonic_time(:microsecond) - t0}
      end

    {last_start, _} = List.last(waits)
    # How long the last task has run when the program ends: it is still running.
    last_running = System.monotonic_time(:microsecond) - last_start
    waited = waits |> Enum.map(fn {_, w} -> w end) |> Enum.max()

    IO.puts(
      ~s({"timeouts": 3, "timeout_ms": #{@timeout}, "lookup_ms": 250, ) <>
        ~s("waited_ms_max": #{Float.round(waited / 1000, 2)}, ) <>
        ~s("last_task_running_ms": #{Float.round(last_running / 1000, 2)}})
    )
  end
end

Report.Main.main()
