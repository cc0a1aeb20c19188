%% An Erlang shop: four registered gen_servers answering after some work, their client
%% functions named by what they answer (no verb says they read; the servers' states do).
%% `checkout/2' asks the price, the stock and the tax rate one after another (independent: they
%% could overlap, taking as long as the longest), then the shipping for a total computed from
%% them (not independent);
%% `basket_total/1' folds over the basket asking one price at a time (an N+1: `prices/1' answers
%% them all at once). Prints its ground truth as its last line, JSON.
-module(shop).
-behaviour(gen_server).
-export([main/0, price/1, prices/1, stock/1, tax/1, shipping/1]).
-export([init/1, handle_call/3, handle_cast/2]).

-define(SERVICES, [{pricing, 30}, {stock, 25}, {tax, 20}, {shipping, 10}]).

price(Sku) -> gen_server:call(pricing, {ask, Sku}).
prices(Skus) -> gen_server:call(pricing, {all, Skus}).
stock(Sku) -> gen_server:call(stock, {ask, Sku}).
tax(Region) -> gen_server:call(tax, {ask, Region}).
shipping(Total) -> gen_server:call(shipping, {ask, Total}).

init({Name, Ms}) -> {ok, #{name => Name, ms => Ms}}.

handle_call({ask, Question}, _From, #{name := Name, ms := Ms} = State) ->
    timer:sleep(Ms),
    {reply, answer(Name, Question), State};
handle_call({all, Skus}, _From, #{name := pricing, ms := Ms} = State) ->
    timer:sleep(Ms),
    {reply, [answer(pricing, Sku) || Sku <- Skus], State}.

handle_cast(_, State) -> {noreply, State}.

answer(pricing, Sku) -> 100 + length(Sku);
answer(stock, _Sku) -> 7;
answer(tax, _Region) -> 20;
answer(shipping, Total) -> Total div 40.

checkout(Sku, Region) ->
    T0 = erlang:monotonic_time(microsecond),
    Price = price(Sku),
    T1 = erlang:monotonic_time(microsecond),
    Level = stock(Sku),
    T2 = erlang:monotonic_time(microsecond),
    Rate = tax(Region),
    T3 = erlang:monotonic_time(microsecond),
    Total = Price + Price * Rate div 100,
    {{T3 - T0, lists:max([T1 - T0, T2 - T1, T3 - T2])}, {Level, Total + shipping(Total)}}.

basket_total(Skus) ->
    lists:foldl(fun(Sku, Sum) -> Sum + price(Sku) end, 0, Skus).

main() ->
    [{ok, _} = gen_server:start_link({local, Name}, ?MODULE, {Name, Ms}, []) || {Name, Ms} <- ?SERVICES],
    %% Overlapped, the three calls would take as long as the longest of them, measured in this
    %% run: on a loaded machine one of them took 11 ms more than in any later run (the first
    %% `timer:sleep/1' loads `timer'), and warm runs overlapped would then overstate the saving.
    {{Three, Longest}, _} = checkout("sku-9", "eu"),
    Basket = ["sku-" ++ integer_to_list(N) || N <- lists:seq(1, 8)],
    {Folded, Sum} = timer:tc(fun() -> basket_total(Basket) end),
    {Batched, Sum} = timer:tc(fun() -> lists:sum(prices(Basket)) end),
    io:format("{\"three_ms\": ~.2f, \"saving_ms\": ~.2f, \"basket\": ~p, \"fold_ms\": ~.2f, \"fold_saving_ms\": ~.2f}~n",
              [Three / 1000, (Three - Longest) / 1000, length(Basket), Folded / 1000, (Folded - Batched) / 1000]),
    init:stop().
