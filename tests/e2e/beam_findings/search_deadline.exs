# A search page asks three backends at once through a Task.Supervisor and gives them 100 ms
# together (Task.yield_many, then Task.shutdown of whatever has not answered: Elixir's idiom for
# a deadline). The reviews backend takes 400 ms, so it is shut down on every page: planted, its
# work lost each time. The program measures how long each shut-down task had run.
defmodule Search do
  @deadline 100

  def backend(:products), do: (Process.sleep(20); [:p1, :p2])
  def backend(:articles), do: (Process.sleep(35); [:a1])
  def backend(:reviews), do: (Process.sleep(400); [:r1])

  def page(query) do
    started = System.monotonic_time(:microsecond)

    tasks =
      for b <- [:products, :articles, :reviews] do
        Task.Supervisor.async_nolink(Search.Tasks, fn -> {b, backend(b)} end)
      end

    results =
      tasks
      |> Task.yield_many(@deadline)
      |> Enum.map(fn {task, res} -> res || {:shut_down, shut_down(task, started)} end)

    {query, results}
  end

  defp shut_down(task, started) do
    Task.shutdown(task, :brutal_kill)
    System.monotonic_time(:microsecond) - started
  end

  def deadline, do: @deadline
end

defmodule Search.Main do
  def main do
    {:ok, _} = Task.Supervisor.start_link(name: Search.Tasks)
    pages = for q <- ["elixir", "otp", "beam"], do: Search.page(q)
    lived = for {_q, results} <- pages, {:shut_down, us} <- results, do: us / 1000

    IO.puts(
      ~s({"tasks": 9, "killed": #{length(lived)}, "deadline_ms": #{Search.deadline()}, ) <>
        ~s("lost_ms": #{Float.round(Enum.sum(lived), 2)}})
    )
  end
end

Search.Main.main()
