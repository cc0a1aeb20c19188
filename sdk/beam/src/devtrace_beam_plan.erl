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
%% unplanned functions meanwhile: it is given the plan too).
%%
%% A plan without message flows sets no process's trace flags: its patterns are meta patterns
%% (`{meta, devtrace_beam_tracer, []}'), which the VM checks in whichever process calls the
%% function, and a watcher gives a lifecycle (`procs') and a registered name only to the
%% processes that ran a planned function (the NIF's `seen/0'). Any flag on a process makes each
%% of its messages cost more (measured: +65 ns a hop on msgbench's ring, a third of an
%% unrecorded hop), so a plan of a few functions costs what their calls cost. A plan with
%% flows traces every process for calls, its lifecycle and the messages that `send' and
%% `receive' trace patterns let through (a GenServer request of the flow's tag, its reply, a
%% message of the tag to a `handle_info'), so other messages cost little.
-module(devtrace_beam_plan).

-export([read/1, trace/2, message_specs/1]).

-define(CALL_SPEC, [{'_', [], [{exception_trace}]}]).
-define(PLANNED_CHECK_MS, 1).
-define(NARROW_EVERY, 20).
-define(WATCH_MS, 10).

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
trace(#{functions := Functions, messages := Messages}, {tracer, Module, State} = Tracer) ->
    Specs = message_specs(Messages),
    Patterns = case Specs of
                   {[], []} -> [{meta, Module, State}];
                   _ -> [local]
               end,
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
            erlang:trace_pattern(on_load, ?CALL_SPEC, Patterns),
            %% Started before processes are traced: the janitor is not recorded.
            Off = off(Patterns),
            Janitor = spawn(fun() -> janitor({Planned, Off}, Modules, Seen, 1) end),
            catch register(devtrace_beam_plan_janitor, Janitor)
    end,
    [erlang:trace_pattern(MFA, ?CALL_SPEC, Patterns) || MFA <- Functions],
    follow(Specs, Tracer).

%% The flag list that takes a pattern of `Patterns' off.
off([{meta, _, _}]) -> [meta];
off(Local) -> Local.

%% Which processes are traced: none by flags without message flows (a watcher follows those
%% that run planned code); with flows, every process for calls, its lifecycle and the messages
%% the patterns let through.
follow({[], []}, Tracer) ->
    Watcher = spawn(fun() -> watch(Tracer) end),
    catch register(devtrace_beam_plan_watcher, Watcher),
    ok;
follow(Specs, Tracer) ->
    Flags = trace_flags(Specs, Tracer),
    erlang:trace(new_processes, true, Flags),
    erlang:trace(self(), true, Flags),
    ok.

%% Every ?WATCH_MS: the processes that ran a planned function since the last look get their
%% lifecycle traced (exits, spawns, links, names registered later) and the name they have now.
watch(Tracer) ->
    receive
    after ?WATCH_MS ->
        [announce(Pid, Tracer) || Pid <- devtrace_beam_tracer:seen()],
        watch(Tracer)
    end.

announce(Pid, Tracer) ->
    catch erlang:trace(Pid, true, [procs, Tracer]),
    case catch process_info(Pid, registered_name) of
        {registered_name, Name} -> devtrace_beam_tracer:name(Pid, Name);
        _ -> ok
    end.

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

%% `Plan' is the planned functions' set and the flags that take a pattern off.
%% Every millisecond: a planned module that has loaded is narrowed at once (its hot code must
%% not run traced whole); every ?NARROW_EVERY ticks, every other new module. Once all planned
%% modules are loaded, `on_load' is switched off and the janitor ends.
janitor(Plan, Pending, Seen, Tick) ->
    receive
    after ?PLANNED_CHECK_MS ->
        Arrived = [M || M <- Pending, erlang:module_loaded(M)],
        [narrow_module(Plan, M) || M <- Arrived],
        case {Pending -- Arrived, Tick rem ?NARROW_EVERY} of
            {[], _} ->
                erlang:trace_pattern(on_load, false, element(2, Plan)),
                %% Modules loaded since the last look were traced whole.
                narrow(Plan, Seen),
                ok;
            {Left, 0} ->
                janitor(Plan, Left, narrow(Plan, Seen), Tick + 1);
            {Left, _} ->
                janitor(Plan, Left, Seen, Tick + 1)
        end
    end.

%% Takes the pattern off the functions of modules loaded since `Seen' that the plan does not
%% name; the modules now.
narrow(Plan, Seen) ->
    Now = loaded(),
    [narrow_module(Plan, M) || M <- sets:to_list(sets:subtract(Now, Seen))],
    Now.

%% One by one: a planned function of the module is never untraced.
narrow_module({Plan, Off}, M) ->
    [erlang:trace_pattern({M, F, A}, false, Off)
     || {F, A} <- functions(M), not sets:is_element({M, F, A}, Plan)].

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
