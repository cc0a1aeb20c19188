%% A connection pool gen_server written as Erlang pools are: checkout hands out a free
%% connection or keeps the caller waiting (noreply); checkin hands the connection to the next
%% waiting caller (gen_server:reply/2). Its callbacks hand their work to helpers in tail calls.
%% Two connections, eight clients at once, each calling gen_server:call/2 inline in a function
%% that does more (it times the call, holds the connection 30 ms, checks it in).
%% Planted problem: the clients wait for a connection — the pool's limit — not for the pool
%% process, which is idle meanwhile. The program prints its own truth as a JSON line.
-module(conn_pool).
-behaviour(gen_server).
-export([main/0, init/1, handle_call/3, handle_cast/2]).

-define(SIZE, 2).
-define(CLIENTS, 8).
-define(HOLD_MS, 30).

main() ->
    {ok, _} = gen_server:start_link({local, conn_pool}, ?MODULE, ?SIZE, []),
    Self = self(),
    [spawn(fun() -> Self ! {waited, query()} end) || _ <- lists:seq(1, ?CLIENTS)],
    Waits = [receive {waited, W} -> W end || _ <- lists:seq(1, ?CLIENTS)],
    Waited = [W || W <- Waits, W > 10000],
    io:format("{\"size\": ~b, \"calls\": ~b, \"waited\": ~b, \"max_wait_ms\": ~.2f, \"hold_ms\": ~b}~n",
              [?SIZE, ?CLIENTS, length(Waited), lists:max(Waits) / 1000, ?HOLD_MS]),
    init:stop().

query() ->
    Start = erlang:monotonic_time(microsecond),
    Conn = gen_server:call(conn_pool, checkout),
    Waited = erlang:monotonic_time(microsecond) - Start,
    timer:sleep(?HOLD_MS),
    gen_server:cast(conn_pool, {checkin, Conn}),
    Waited.

init(N) -> {ok, #{free => lists:seq(1, N), waiting => queue:new()}}.

handle_call(checkout, From, State) -> checkout(From, State).
handle_cast({checkin, Conn}, State) -> checkin(Conn, State).

checkout(_From, #{free := [Conn | Free]} = S) -> {reply, Conn, S#{free := Free}};
checkout(From, #{free := [], waiting := W} = S) -> {noreply, S#{waiting := queue:in(From, W)}}.

checkin(Conn, #{free := Free, waiting := W} = S) ->
    case queue:out(W) of
        {{value, From}, W2} -> gen_server:reply(From, Conn), {noreply, S#{waiting := W2}};
        {empty, _} -> {noreply, S#{free := [Conn | Free]}}
    end.
