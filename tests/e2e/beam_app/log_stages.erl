%% A log pipeline of gen_servers written as Erlang code often is: each callback hands its
%% message to a helper in a tail call (`handle_cast({line, L}, S) -> handle_line(L, S).'), so
%% one message's work is two calls, the callback's and the helper's. Lines go reader -> geoip
%% -> writer by casts, one every ~1 ms; geoip looks each up for ~6 ms, so its mailbox backs
%% up. Each line carries the time it was handed on, so each stage measures how long it waited
%% before the stage took it. Prints its ground truth as its last line, JSON: geoip's waits.
-module(log_stages).
-behaviour(gen_server).
-export([main/0, init/1, handle_call/3, handle_cast/2]).

-define(LINES, 40).

main() ->
    {ok, _} = gen_server:start_link({local, writer}, ?MODULE, {none, 0}, []),
    {ok, _} = gen_server:start_link({local, geoip}, ?MODULE, {writer, 6}, []),
    {ok, _} = gen_server:start_link({local, reader}, ?MODULE, {geoip, 0}, []),
    [begin hand_on(reader, N), timer:sleep(1) end || N <- lists:seq(1, ?LINES)],
    Waits = waits_of(writer, geoip),
    io:format("{\"lines\": ~p, \"geoip_max_wait_ms\": ~.2f, \"geoip_mean_wait_ms\": ~.2f}~n",
              [length(Waits), lists:max(Waits) / 1000, lists:sum(Waits) / length(Waits) / 1000]),
    init:stop().

%% How long each line waited for `Stage', asked of it once the last stage has every line.
waits_of(Last, Stage) ->
    case length(gen_server:call(Last, waits)) of
        ?LINES -> gen_server:call(Stage, waits);
        _ -> timer:sleep(50), waits_of(Last, Stage)
    end.

hand_on(Stage, Line) ->
    gen_server:cast(Stage, {line, Line, erlang:monotonic_time(microsecond)}).

init({Next, WorkMs}) -> {ok, #{next => Next, work_ms => WorkMs, waits => []}}.

handle_cast({line, Line, SentAt}, State) ->
    handle_line(Line, erlang:monotonic_time(microsecond) - SentAt, State).

handle_call(waits, _From, #{waits := Waits} = State) ->
    {reply, Waits, State}.

handle_line(Line, Waited, #{next := Next, work_ms := WorkMs, waits := Waits} = State) ->
    timer:sleep(WorkMs),
    Next =:= none orelse hand_on(Next, Line),
    {noreply, State#{waits := [Waited | Waits]}}.
