%% The till's stock server, registered under ?STOCK; its client functions take the server (or
%% the log module) they talk to as an argument.
-module(till_server).
-behaviour(gen_server).
-include("till.hrl").
-export([start_link/1, request/2, note/2, init/1, handle_call/3, handle_cast/2]).

start_link(Stock) -> gen_server:start_link({local, ?STOCK}, ?MODULE, Stock, []).

request(Server, Amount) -> gen_server:call(Server, {request, Amount}).

note(Log, Amount) -> Log:entry(Amount).

init(Stock) -> {ok, Stock}.

handle_call({request, Amount}, _From, Stock) -> {reply, ok, Stock - Amount}.

handle_cast(_Message, Stock) -> {noreply, Stock}.
