# A job queue with a blocking dequeue, as pools of workers are often written: each worker asks
# for its next job with `:infinity`, and the queue keeps the worker's `from` until a job comes.
# Three workers run five jobs; then the service idles, waiting for more work, until the test
# presses Ctrl-C twice. Workers waiting for work are no hang. Its truth line says how many jobs
# ran.
defmodule Jobs.Queue do
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)
  def push(job), do: GenServer.cast(__MODULE__, {:push, job})
  def next, do: GenServer.call(__MODULE__, :next, :infinity)
  def done, do: GenServer.call(__MODULE__, :done)

  @impl true
  def init(:ok), do: {:ok, %{jobs: :queue.new(), waiting: :queue.new(), done: 0}}

  @impl true
  def handle_cast({:push, job}, state) do
    case :queue.out(state.waiting) do
      {{:value, from}, rest} ->
        GenServer.reply(from, job)
        {:noreply, %{state | waiting: rest}}

      {:empty, _} ->
        {:noreply, %{state | jobs: :queue.in(job, state.jobs)}}
    end
  end

  def handle_cast(:finished, state), do: {:noreply, %{state | done: state.done + 1}}

  @impl true
  def handle_call(:next, from, state) do
    case :queue.out(state.jobs) do
      {{:value, job}, rest} -> {:reply, job, %{state | jobs: rest}}
      {:empty, _} -> {:noreply, %{state | waiting: :queue.in(from, state.waiting)}}
    end
  end

  def handle_call(:done, _from, state), do: {:reply, state.done, state}
end

defmodule Jobs.Worker do
  def start, do: spawn_link(fn -> loop() end)

  def loop do
    run(Jobs.Queue.next())
    GenServer.cast(Jobs.Queue, :finished)
    loop()
  end

  defp run(ms), do: Process.sleep(ms)
end

defmodule Jobs.Main do
  def main do
    {:ok, _} = Jobs.Queue.start_link([])
    for _ <- 1..3, do: Jobs.Worker.start()
    for ms <- [30, 40, 20, 50, 10], do: Jobs.Queue.push(ms)
    wait_until_done(5)
    IO.puts(~s({"jobs": 5, "workers": 3}))
    Process.sleep(:infinity)
  end

  defp wait_until_done(n) do
    if Jobs.Queue.done() < n, do: (Process.sleep(10); wait_until_done(n))
  end
end

Jobs.Main.main()
