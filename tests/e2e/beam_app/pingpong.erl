%% An Erlang program for tests/e2e/test_beam.py, started with `erl -s pingpong start -s init
%% stop': a registered server answers pings from the starting process, then stops on request.
%% It prints its ground truth (how many pings) as JSON.
-module(pingpong).
-export([start/0, server/1, double/1]).

-define(PINGS, 5).

start() ->
    Server = spawn(?MODULE, server, [0]),
    register(pong_server, Server),
    Ref = monitor(process, Server),
    [begin
         pong_server ! {ping, self(), N},
         receive {pong, N, _} -> ok end
     end || N <- lists:seq(1, ?PINGS)],
    pong_server ! {stop, self()},
    receive {'DOWN', Ref, process, Server, {shutdown, Count}} -> ok end,
    io:format("{\"pings\": ~p, \"served\": ~p}~n", [?PINGS, Count]).

server(Count) ->
    receive
        {ping, From, N} ->
            From ! {pong, N, double(N)},
            server(Count + 1);
        {stop, _From} ->
            exit({shutdown, Count})
    end.

double(N) -> 2 * N.
