%% @doc Recording under `devtrace run --plan ID': exactly the plan's functions, losslessly, and
%% the messages of its message flows; everything else runs untraced.
%%
%% `devtrace run' writes the plan as Erlang terms into the file `DEVTRACE_BEAM_PLAN' names
%% (`{function, Module, Function, Arity}.', `{message, call | cast | info, Server, Tag}.').
%% Calls: a trace pattern on each planned `{M, F, A}' (a planned module on the code path is
%% loaded first); a planned module that cannot be loaded yet is caught by the `on_load' pattern (which traces a whole module as it loads), and
%% a janitor takes the pattern off the functions of new modules the plan does not name (a planned
%% module's within a millisecond of its loading, others' within 20 ms), then
%% the `on_load' pattern itself once every planned module is loaded (the NIF drops the calls of
%% unplanned functions meanwhile: it is given the plan too). Processes are traced for calls and
%% their lifecycle; messages only when the plan has flows, restricted by `send' and `receive'
%% trace patterns to the flows' messages (a GenServer request of the flow's tag, its reply, a
%% message of the tag to a `handle_info'), so other messages cost nothing.
-module(devtrace_beam_plan).

-export([read/1, trace/2, message_specs/1]).

-define(CALL_SPEC, [{'_', [], [{exception_trace}]}]).
-define(PLANNED_CHECK_MS, 1).
-define(NARROW_EVERY, 20).

%% @doc The plan in `Path': `{ok, #{functions, messages}}' or `{error, Reason}'.
read(Path) ->
    case file:consult(Path) of
        {ok, Terms} ->
            {ok, #{functions => [{M, F, A} || {function, M, F, A} <- Terms],
                   messages => [{K, S, T} || {message, K, S, T} <- Terms]}};
        {error, Reason} ->
            {error, {plan, Path, Reason}}
    end.

%% @doc Turns tracing on for the plan; `Tracer' is the `{tracer, Module, State}' flag.
trace(#{functions := Functions, messages := Messages}, Tracer) ->
    Modules = lists:usort([M || {M, _, _} <- Functions]),
    %% A planned module on the code path is loaded now, so that only its planned functions are
    %% ever traced; one that is not there yet (an `.exs' file's, a Mix project's before Mix
    %% sets the code path) is caught by `on_load' and narrowed by the janitor.
    [code:ensure_loaded(M) || M <- Modules],
    Seen = loaded(),
    Planned = sets:from_list(Functions),
    case [M || M <- Modules, not erlang:module_loaded(M)] of
        [] ->
            ok;
        _ ->
            erlang:trace_pattern(on_load, ?CALL_SPEC, [local]),
            %% Started before processes are traced: the janitor is not recorded.
            Janitor = spawn(fun() -> janitor(Planned, Modules, Seen, 1) end),
            catch register(devtrace_beam_plan_janitor, Janitor)
    end,
    [erlang:trace_pattern(MFA, ?CALL_SPEC, [local]) || MFA <- Functions],
    Flags = trace_flags(message_specs(Messages), Tracer),
    erlang:trace(new_processes, true, Flags),
    erlang:trace(self(), true, Flags),
    ok.

%% The processes' flags: calls and lifecycle, and the messages the patterns let through.
trace_flags({[], []}, Tracer) ->
    [call, procs, Tracer];
trace_flags({Sends, Receives}, Tracer) ->
    try
        erlang:trace_pattern(send, Sends, []),
        erlang:trace_pattern('receive', Receives, [])
    of
        _ -> [call, procs, send, 'receive', Tracer]
    catch
        error:Reason ->
            io:format(standard_error,
                      "devtrace: the BEAM runtime records the plan's calls but not its messages: ~tp~n",
                      [Reason]),
            trace_flags({[], []}, Tracer)
    end.

loaded() ->
    sets:from_list([M || {M, _} <- code:all_loaded()]).

%% Every millisecond: a planned module that has loaded is narrowed at once (its hot code must
%% not run traced whole); every ?NARROW_EVERY ticks, every other new module. Once all planned
%% modules are loaded, `on_load' is switched off and the janitor ends.
janitor(Planned, Pending, Seen, Tick) ->
    receive
    after ?PLANNED_CHECK_MS ->
        Arrived = [M || M <- Pending, erlang:module_loaded(M)],
        [narrow_module(Planned, M) || M <- Arrived],
        case {Pending -- Arrived, Tick rem ?NARROW_EVERY} of
            {[], _} ->
                erlang:trace_pattern(on_load, false, [local]),
                %% Modules loaded since the last look were traced whole.
                narrow(Planned, Seen),
                ok;
            {Left, 0} ->
                janitor(Planned, Left, narrow(Planned, Seen), Tick + 1);
            {Left, _} ->
                janitor(Planned, Left, Seen, Tick + 1)
        end
    end.

%% Takes the pattern off the functions of modules loaded since `Seen' that the plan does not
%% name; the modules now.
narrow(Planned, Seen) ->
    Now = loaded(),
    [narrow_module(Planned, M) || M <- sets:to_list(sets:subtract(Now, Seen))],
    Now.

%% One by one: a planned function of the module is never untraced.
narrow_module(Planned, M) ->
    [erlang:trace_pattern({M, F, A}, false, [local])
     || {F, A} <- functions(M), not sets:is_element({M, F, A}, Planned)].

functions(M) ->
    try erlang:get_module_info(M, functions) catch error:_ -> [] end.

%% @doc The `send' and `receive' trace patterns of the plan's message flows: `{Sends,
%% Receives}', both empty without flows. A request is matched by its tag (the atom it is, or
%% the first element of the tuple it is); with a call flow, `gen' replies (`{[alias | Ref],
%% Reply}', OTP 24's; not every `{Ref, Term}' message a library sends itself).
message_specs([]) ->
    {[], []};
message_specs(Messages) ->
    Shapes = lists:usort([shape(Kind, Tag) || {Kind, _Server, Tag} <- Messages])
        ++ [reply || lists:keymember(call, 1, Messages)],
    Clauses = [C || S <- Shapes, C <- patterns(S)],
    {[{['_', Pattern], Guards, []} || {Pattern, Guards} <- Clauses],
     [{['_', '_', Pattern], Guards, []} || {Pattern, Guards} <- Clauses]}.

shape(Kind, Tag) -> {Kind, Tag}.

%% Match-spec clauses `{Message pattern, Guards}' for one shape (a guard that fails, as
%% `element/2' of a non-tuple does, is a clause that does not match).
patterns({call, Tag}) -> tagged({'$gen_call', '_', '$1'}, Tag);
patterns({cast, Tag}) -> tagged({'$gen_cast', '$1'}, Tag);
patterns({info, Tag}) -> tagged('$1', Tag);
patterns(reply) ->
    [{{'$1', '_'}, [{'=:=', {hd, '$1'}, alias}]}].

tagged(Pattern, undefined) ->
    [{Pattern, []}];
tagged(Pattern, Tag) ->
    [{Pattern, [{'=:=', '$1', {const, Tag}}]},
     {Pattern, [{'=:=', {element, 1, '$1'}, {const, Tag}}]}].
