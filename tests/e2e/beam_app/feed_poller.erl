%% A feed poller written as Erlang code often is: handle_info hands the tick to a helper in a
%% tail call (`handle_info(tick, S) -> poll(S).'), and the helper crashes on the interval in
%% its state ("soon", where it needs a number). Its supervisor (feed_sup) restarts it until
%% the restart intensity is spent. Planted problem: a restart loop whose every life crashed,
%% in poll/1, in the state its callback was given.
-module(feed_poller).
-behaviour(gen_server).
-export([start_link/0, init/1, handle_call/3, handle_cast/2, handle_info/2]).

start_link() -> gen_server:start_link({local, feed_poller}, ?MODULE, [], []).

init([]) ->
    erlang:send_after(10, self(), tick),
    {ok, #{url => "feed://example", interval => "soon", polls => 0}}.

handle_call(_Request, _From, State) -> {reply, ok, State}.
handle_cast(_Message, State) -> {noreply, State}.

handle_info(tick, State) -> poll(State).

poll(#{interval := Interval, polls := Polls} = State) ->
    erlang:send_after(list_to_integer(Interval), self(), tick),
    {noreply, State#{polls := Polls + 1}}.
