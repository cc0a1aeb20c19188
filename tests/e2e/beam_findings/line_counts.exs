# Counts the lines of each of a project's files by running `wc -l` once a file (System.cmd/3: an
# OS process, outside the program), where one `wc -l` given every file would do. Planted
# problem: `repeated_calls` of `LineCount.count/1`, a call out of the recording (its time is a
# wait for the port's messages). Prints its own ground truth.
defmodule LineCount do
  def count_all(paths), do: Enum.map(paths, &count/1)

  def count(path) do
    {out, 0} = System.cmd("wc", ["-l", path])
    out |> String.split() |> hd() |> String.to_integer()
  end
end

defmodule LineCount.Main do
  @files 12

  def main do
    dir = Path.join(System.tmp_dir!(), "line_counts_#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)

    paths =
      for n <- 1..@files do
        path = Path.join(dir, "file_#{n}.txt")
        File.write!(path, String.duplicate("a line\n", n * 10))
        path
      end

    {loop, counts} = :timer.tc(fn -> LineCount.count_all(paths) end)
    File.rm_rf!(dir)
    IO.puts(~s({"calls": #{length(counts)}, "loop_ms": #{Float.round(loop / 1000, 2)}}))
  end
end

LineCount.Main.main()
