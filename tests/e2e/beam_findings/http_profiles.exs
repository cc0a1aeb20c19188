# A report that fetches each user's profile from an HTTP API (outside the program: the test
# serves it from another OS process) with OTP's :httpc, one request at a time, where one request
# for all of them, or requests made at once, would do. Planted problem: `repeated_calls` of
# `Profiles.fetch/2`, a call out of the recording (its time is a wait for :httpc's messages).
# Prints its own ground truth.
defmodule Profiles do
  def fetch_all(base, ids), do: Enum.map(ids, &fetch(base, &1))

  def fetch(base, id) do
    {:ok, {{_, 200, _}, _headers, body}} =
      :httpc.request(:get, {~c"#{base}/users/#{id}", []}, [], body_format: :binary)

    body
  end
end

defmodule Profiles.Main do
  @users 15

  def main do
    {:ok, _} = Application.ensure_all_started(:inets)
    base = "http://127.0.0.1:#{System.fetch_env!("PROFILES_PORT")}"
    {loop, bodies} = :timer.tc(fn -> Profiles.fetch_all(base, Enum.to_list(1..@users)) end)
    IO.puts(~s({"calls": #{length(bodies)}, "loop_ms": #{Float.round(loop / 1000, 2)}}))
  end
end

Profiles.Main.main()
