#!/usr/bin/env escript
%% An escript building a report: a list comprehension asks a stats server for each of 20
%% metrics, one call a metric. Planted problem: one call per item (the comprehension's turns
%% are one after another, not nested). Prints its ground truth as JSON.
-module(report).
-mode(compile).
-export([main/1, init/1, handle_call/3, handle_cast/2]).

main(_) ->
    {ok, _} = gen_server:start_link({local, stats}, ?MODULE, [], []),
    T0 = erlang:monotonic_time(microsecond),
    Values = [gen_server:call(stats, {metric, M}) || M <- lists:seq(1, 20)],
    Loop = erlang:monotonic_time(microsecond) - T0,
    io:format("{\"calls\": ~p, \"loop_ms\": ~.2f}~n", [length(Values), Loop / 1000]).

init([]) -> {ok, #{}}.

handle_call({metric, M}, _From, S) ->
    timer:sleep(3),
    {reply, M * 2, S}.

handle_cast(_, S) -> {noreply, S}.
