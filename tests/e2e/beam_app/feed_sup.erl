%% Supervises feed_poller (one_for_one, at most 3 restarts in 5 s) and waits for it to give
%% up. Prints its ground truth as its last line, JSON: the restart intensity and whether the
%% supervisor gave up.
-module(feed_sup).
-behaviour(supervisor).
-export([main/0, init/1]).

-define(INTENSITY, 3).

main() ->
    process_flag(trap_exit, true),
    {ok, Sup} = supervisor:start_link(?MODULE, []),
    Ref = monitor(process, Sup),
    GaveUp = receive {'DOWN', Ref, process, Sup, shutdown} -> true after 5000 -> false end,
    io:format("{\"intensity\": ~p, \"gave_up\": ~p}~n", [?INTENSITY, GaveUp]),
    init:stop().

init([]) ->
    {ok, {#{strategy => one_for_one, intensity => ?INTENSITY, period => 5},
          [#{id => feed_poller, start => {feed_poller, start_link, []}}]}}.
