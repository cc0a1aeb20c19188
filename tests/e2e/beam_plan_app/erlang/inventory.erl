%% The stock server of shop.erl, registered under the name `stock'.
-module(inventory).
-behaviour(gen_server).
-export([start_link/1, reserve/1, init/1, handle_call/3, handle_cast/2]).

start_link(Stock) -> gen_server:start_link({local, stock}, ?MODULE, Stock, []).

reserve(Amount) -> gen_server:call(stock, {reserve, Amount}).

init(Stock) -> {ok, Stock}.

handle_call({reserve, Amount}, _From, Stock) ->
    {reply, ok, Stock - count_down(Amount)}.

handle_cast(_Message, Stock) -> {noreply, Stock}.

%% Three calls away from checkout: beyond the plan's depth 2.
count_down(Amount) ->
    timer:sleep(20),
    Amount.
