%% The BEAM runtime's message-passing benchmark (bench/beam/bench.py runs it): a ring of
%% processes passing a token; each hop is a call of this module's `hop/2' (a recorded function)
%% and a message. `main([Mode])' runs it and prints `{"mode": ..., "ms": ..., "hops": ...,
%% "max_rss_kib": ...}' (the VM's peak resident memory):
%%   plain  as is (recorded or not: `devtrace run --record' records it with no change);
%%   dbg    under `dbg' with a tracer process (what a BEAM developer would use instead): the same
%%          trace flags and pattern as devtrace's runtime, the tracer counting the messages;
%%   eprof  under `eprof' (call counts and times of this module's functions, following spawns);
%%   fprof  under `fprof' (every call of every function traced to a file, following spawns;
%%          only the tracing is timed, not fprof's analysis afterwards);
%%   nif    only the ring writes: `devtrace_beam_tracer:bench_write/1', ns per record.
-module(msgbench).
-export([main/1, hop/2, node_loop/2]).

-define(PROCS, 100).
%% Times the token goes round: MSGBENCH_ROUNDS, 200 by default (a longer run makes a small
%% overhead stand out of the VM's run-to-run spread).
rounds() -> list_to_integer(os:getenv("MSGBENCH_ROUNDS", "200")).

main([Mode]) ->
    case Mode of
        "nif" ->
            Ns = devtrace_beam_tracer:bench_write(10000000),
            io:format("{\"mode\": \"nif\", \"ns_per_record\": ~p}~n", [Ns]);
        "dbg" ->
            Count = counter(),
            {ok, _} = dbg:tracer(process, {fun(_Msg, N) -> Count ! tick, N + 1 end, 0}),
            {ok, _} = dbg:p(new, [c, m, p]),
            {ok, _} = dbg:tpl(?MODULE, [{'_', [], [{exception_trace}]}]),
            run("dbg"),
            dbg:stop();
        "eprof" ->
            {ok, _} = eprof:start(),
            profiling = eprof:start_profiling([self()], {?MODULE, '_', '_'}),
            run("eprof"),
            profiling_stopped = eprof:stop_profiling(),
            stopped = eprof:stop();
        "fprof" ->
            File = filename:join(os:getenv("TMPDIR", "/tmp"), "msgbench-fprof-" ++ os:getpid() ++ ".trace"),
            ok = fprof:trace([start, {file, File}, {procs, [self()]}]),
            run("fprof"),
            ok = fprof:trace(stop),
            ok = file:delete(File);
        "plain" ->
            run("plain")
    end,
    init:stop().

counter() ->
    spawn(fun Loop() -> receive tick -> Loop() end end).

run(Mode) ->
    Self = self(),
    Starter = spawn(fun() -> Self ! {result, ring()} end),
    receive {result, {Micros, Hops}} -> ok end,
    _ = Starter,
    io:format("{\"mode\": \"~s\", \"ms\": ~.3f, \"hops\": ~p, \"max_rss_kib\": ~p}~n",
              [Mode, Micros / 1000, Hops, max_rss_kib()]).

%% The VM's peak resident memory so far (Linux's VmHWM), in KiB; 0 where there is none.
max_rss_kib() ->
    case file:read_file("/proc/self/status") of
        {ok, Status} ->
            case re:run(Status, "VmHWM:\\s+(\\d+) kB", [{capture, all_but_first, list}]) of
                {match, [KiB]} -> list_to_integer(KiB);
                nomatch -> 0
            end;
        _ ->
            0
    end.

%% A ring of ?PROCS processes; the token goes round rounds() times.
ring() ->
    Self = self(),
    First = lists:foldl(fun(_, Next) -> spawn(?MODULE, node_loop, [Next, 0]) end, Self,
                        lists:seq(1, ?PROCS)),
    Hops = ?PROCS * rounds(),
    {Micros, ok} = timer:tc(fun() -> First ! {token, Hops}, wait_done(First) end),
    First ! stop,
    {Micros, Hops}.

wait_done(First) ->
    receive
        {token, 0} -> ok;
        {token, N} -> First ! {token, N - 1}, wait_done(First)
    end.

node_loop(Next, Seen) ->
    receive
        {token, N} ->
            Next ! {token, hop(N, Seen)},
            node_loop(Next, Seen + 1);
        stop ->
            Next ! stop
    end.

%% The recorded work of a hop.
hop(0, _Seen) -> 0;
hop(N, _Seen) -> N - 1.
