%% The Erlang operation tests/e2e/test_beam_plan.py plans: shop:checkout/1 prices a basket
%% (through an anonymous function), totals it and reserves the stock through gen_server:call.
%% `erl -noshell -s shop main -s init stop' runs five checkouts and prints the ground truth.
-module(shop).
-export([main/0, checkout/1, total/1, report/1]).

main() ->
    {ok, _} = inventory:start_link(1000000),
    Basket = [{3, 2}, {10, 1}],
    Results = [checkout(Basket) || _ <- lists:seq(1, 5)],
    io:format("{\"checkouts\": ~p}~n", [report(Results)]).

checkout(Items) ->
    Prices = lists:map(fun(Item) -> price(Item) end, Items),
    Total = total(Prices),
    ok = inventory:reserve(Total),
    Total.

price({Cost, Count}) -> Cost * Count.

total(Prices) -> with_tax(lists:sum(Prices)).

with_tax(Sum) -> round(Sum * 1.2).

%% Called by the program, never by checkout: not in the plan.
report(Results) -> length(Results).
