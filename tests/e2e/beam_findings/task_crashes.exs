# A batch import fans out ten rows under a Task.Supervisor (async_nolink: a crash does not take
# the job down) and collects them with Task.yield_many; three rows are corrupt and their tasks
# crash, once each. Nothing restarts them: no restart loop.
defmodule Import do
  def row(n) do
    Process.sleep(20)
    if rem(n, 3) == 0, do: raise(ArgumentError, "corrupt row #{n}")
    {:ok, n}
  end
end

defmodule Import.Main do
  def main do
    {:ok, sup} = Task.Supervisor.start_link()
    tasks = for n <- 1..10, do: Task.Supervisor.async_nolink(sup, Import, :row, [n])
    results = Task.yield_many(tasks, 2_000)
    failed = Enum.count(results, fn {_, result} -> match?({:exit, _}, result) end)
    IO.puts(~s({"rows": 10, "failed": #{failed}}))
  end
end

Import.Main.main()
