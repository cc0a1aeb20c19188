%% An Erlang report server asked inline, in the function that goes on with other work, with a
%% 100 ms timeout it cannot meet: `try gen_server:call(reports, {report, Id}, 100) catch
%% exit:{timeout, _} -> … end'. The server crunches 300 ms. Prints its ground truth as its
%% last line, JSON: the timeout and how long the server took (asked of it afterwards).
-module(reports).
-behaviour(gen_server).
-export([main/0, init/1, handle_call/3, handle_cast/2]).

init(_) -> {ok, #{took_us => 0}}.

handle_call({report, _Id}, _From, State) ->
    {Took, Report} = timer:tc(fun() -> crunch(300) end),
    {reply, Report, State#{took_us := Took}};
handle_call(last_took, _From, #{took_us := Took} = State) ->
    {reply, Took, State}.

handle_cast(_, State) -> {noreply, State}.

crunch(Ms) -> timer:sleep(Ms), #{rows => 42}.

main() ->
    {ok, _} = gen_server:start_link({local, reports}, ?MODULE, [], []),
    Summary = try gen_server:call(reports, {report, 7}, 100)
              catch exit:{timeout, _} -> no_report
              end,
    Took = gen_server:call(reports, last_took, 5000),
    io:format("{\"summary\": \"~p\", \"timeout_ms\": 100, \"server_ms\": ~.2f}~n", [Summary, Took / 1000]),
    init:stop().
