# Per-user sessions: GenServers under a DynamicSupervisor, found through a Registry, started on
# a user's first request (`restart: :temporary`: the supervisor never restarts them). One user's
# profile is malformed, so their session crashes on every request, and the next request starts
# it again. Planted problem: the same session crashing again and again in the same state — a
# restart loop the program drives, not the supervisor.
defmodule Session do
  use GenServer, restart: :temporary
  def start_link(user), do: GenServer.start_link(__MODULE__, user, name: via(user))
  defp via(user), do: {:via, Registry, {Sessions, user}}

  def init(user) do
    profile = if user == "mallory", do: "{\"theme\": ", else: %{"theme" => "dark"}
    {:ok, %{user: user, profile: profile}}
  end

  def touch(user), do: GenServer.call(session(user), :touch)

  # A session that crashed stays registered until the Registry hears of its exit, which can be
  # after its caller did (on a busy machine, after the caller's next requests): a dead one is
  # started again as a missing one is, rather than called and found gone (`:noproc`).
  defp session(user) do
    case Registry.lookup(Sessions, user) do
      [{pid, _}] -> if Process.alive?(pid), do: pid, else: start(user)
      [] -> start(user)
    end
  end

  defp start(user) do
    {:ok, pid} = DynamicSupervisor.start_child(SessionSup, {Session, user})
    pid
  end

  def handle_call(:touch, _from, %{profile: profile} = s) when is_map(profile),
    do: {:reply, profile["theme"], s}

  def handle_call(:touch, _from, %{profile: profile}),
    do: raise(ArgumentError, "malformed profile #{inspect(profile)}")
end

defmodule Session.Main do
  def main do
    {:ok, _} = Registry.start_link(keys: :unique, name: Sessions)
    {:ok, _} = DynamicSupervisor.start_link(strategy: :one_for_one, name: SessionSup)

    results =
      for i <- 1..12 do
        user = Enum.at(["alice", "bob", "mallory"], rem(i, 3))

        try do
          Session.touch(user)
        catch
          # The session crashed while answering (its exception is the call's exit reason).
          :exit, {{%ArgumentError{}, _}, _} -> :crashed
        end
      end

    IO.puts(~s({"crashes": #{Enum.count(results, &(&1 == :crashed))}, "requests": 12}))
  end
end

Session.Main.main()
