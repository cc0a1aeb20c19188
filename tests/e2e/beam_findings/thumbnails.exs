# Thumbnails rendered by `Task.async_stream` with a timeout and `on_timeout: :kill_task`: most
# images take ~10 ms, every fourth (a large one) ~120 ms, past the 50 ms timeout. Planted
# problem: the large images' tasks are killed at the timeout and their thumbnails lost,
# silently (`{:exit, :timeout}` in the results; the program goes on). Prints its own ground
# truth.
defmodule Thumbnails do
  @timeout 50

  def render(id) do
    {took, :ok} = :timer.tc(fn -> Process.sleep(if rem(id, 4) == 0, do: 120, else: 10) end)
    {id, took}
  end

  def render_all(ids) do
    ids
    |> Task.async_stream(&render/1, max_concurrency: 4, timeout: @timeout, on_timeout: :kill_task)
    |> Enum.to_list()
  end

  def timeout, do: @timeout
end

defmodule Thumbnails.Main do
  def main do
    results = Thumbnails.render_all(Enum.to_list(1..12))
    killed = Enum.count(results, &match?({:exit, :timeout}, &1))
    finished = for {:ok, {_id, took}} <- results, do: took

    IO.puts(
      ~s({"tasks": #{length(results)}, "killed": #{killed}, "timeout_ms": #{Thumbnails.timeout()}, ) <>
        ~s("finished_median_ms": #{median_ms(finished)}})
    )
  end

  defp median_ms(took), do: Float.round(Enum.at(Enum.sort(took), div(length(took), 2)) / 1000, 2)
end

Thumbnails.Main.main()
