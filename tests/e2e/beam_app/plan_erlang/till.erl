%% The Erlang operation tests/e2e/test_beam_plan.py plans: till:sell/1 asks the stock server,
%% passed as an argument (a `-define'd name) to the client function till_server:request/2.
%% `erl -noshell -s till main -s init stop' runs five sales and prints the ground truth.
-module(till).
-include("till.hrl").
-export([main/0, sell/1]).

main() ->
    {ok, _} = till_server:start_link(1000000),
    Sold = [sell([{3, 2}, {10, 1}]) || _ <- lists:seq(1, 5)],
    io:format("{\"sells\": ~p}~n", [length(Sold)]).

sell(Items) ->
    Total = lists:sum([Cost * Count || {Cost, Count} <- Items]),
    ok = till_server:request(?STOCK, Total),
    ok = till_server:note(till_log, Total),
    Total.
