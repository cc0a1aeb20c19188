%% A pipeline of plain processes, parse -> enrich -> store, each handing on the very message it
%% got (`Next ! Record`): one content travels every hop. Records come every millisecond or so;
%% enrich takes 3 ms a record, so its mailbox backs up while parse and store keep up. Each
%% record carries when it was produced; parse hands it on at once, so enrich measures how long
%% it waited: the ground truth, printed as JSON.
-module(relay).
-export([main/0]).

-define(RECORDS, 60).

stage(Work, Next, Waits) ->
    receive
        {record, _N, ProducedAt} = Record ->
            Waited = erlang:monotonic_time(microsecond) - ProducedAt,
            Work(),
            hand_on(Next, Record),
            stage(Work, Next, [Waited | Waits]);
        {flush, From} = Flush ->
            %% Every record before it has gone through: pass it on, or say so at the end.
            case Next of
                none -> From ! flushed;
                _ -> Next ! Flush
            end,
            stage(Work, Next, Waits);
        {waits, From} ->
            From ! {waits, Waits},
            stage(Work, Next, Waits)
    end.

hand_on(none, _) -> ok;
hand_on(Next, Record) -> Next ! Record.

main() ->
    Store = spawn(fun() -> stage(fun() -> ok end, none, []) end),
    Enrich = spawn(fun() -> stage(fun() -> timer:sleep(3) end, Store, []) end),
    Parse = spawn(fun() -> stage(fun() -> ok end, Enrich, []) end),
    [begin
         Parse ! {record, N, erlang:monotonic_time(microsecond)},
         timer:sleep(1)
     end || N <- lists:seq(1, ?RECORDS)],
    Parse ! {flush, self()},
    receive flushed -> ok end,
    Enrich ! {waits, self()},
    Waits = receive {waits, W} -> W end,
    io:format("{\"records\": ~b, \"enrich\": \"~s\", \"enrich_max_wait_ms\": ~.2f}~n",
              [?RECORDS, pid_to_list(Enrich), lists:max(Waits) / 1000]),
    init:stop().
