#!/usr/bin/env escript
%% devtrace plan for Erlang: reads the source with epp:parse_file (parsed, never compiled or
%% run) and follows calls from one function to a depth. Shipped inside devtrace's binary and
%% run by `escript'; arguments: DEPTH MODULE FUNCTION ARITY ROOT...; answers one JSON object on
%% stdout: functions, notes, flows, missing. A module or server passed as an argument is bound
%% to what the caller passes as written (an atom, a `-define'd name, a variable the caller has
%% bound), through at most ?MAX_BINDINGS argument sets a function.
-mode(compile).

-define(SKIP_DIRS, ["_build", "deps", "node_modules", ".git"]).
-define(MAX_FILES, 2000).
-define(MAX_BINDINGS, 4).

main([Depth, Module, Function, Arity | Roots]) ->
    Files = lists:sublist(lists:usort(lists:append([source_files(R) || R <- Roots])), ?MAX_FILES),
    Modules = read_modules(Files),
    Target = {list_to_atom(Module), list_to_atom(Function), list_to_integer(Arity)},
    Result = follow(Modules, Target, list_to_integer(Depth)),
    ok = io:setopts([{encoding, unicode}]),
    io:put_chars(unicode:characters_to_list(iolist_to_binary(json(Result)))).

source_files(Root) ->
    case filelib:is_dir(Root) of
        true ->
            case file:list_dir(Root) of
                {ok, Names} ->
                    lists:append([source_files_in(Root, N)
                                  || N <- lists:sort(Names),
                                     not lists:member(N, ?SKIP_DIRS), hd(N) =/= $.]);
                _ ->
                    []
            end;
        false ->
            [Root || filelib:is_regular(Root), filename:extension(Root) =:= ".erl"]
    end.

source_files_in(Root, Name) ->
    Path = filename:join(Root, Name),
    case filelib:is_dir(Path) of
        true -> source_files(Path);
        false -> [Path || filename:extension(Name) =:= ".erl"]
    end.

%% #{Module => #{file, functions => #{{F, A} => {Line, Clauses}}}}
read_modules(Files) ->
    lists:foldl(fun read_module/2, #{}, Files).

read_module(File, Acc) ->
    Includes = [filename:dirname(File), filename:join(filename:dirname(filename:dirname(File)), "include")],
    case epp:parse_file(File, [{includes, Includes}]) of
        {ok, Forms} ->
            case [M || {attribute, _, module, M} <- Forms] of
                [M | _] ->
                    Functions = maps:from_list(
                                  [{{F, A}, {line(L), Clauses}} || {function, L, F, A, Clauses} <- Forms]),
                    Acc#{M => #{file => File, functions => Functions}};
                [] ->
                    Acc
            end;
        _ ->
            Acc
    end.

line(L) when is_integer(L) -> L;
line({L, _}) -> L;
line(A) -> erl_anno:line(A).

follow(Modules, Target, Depth) ->
    case defined(Modules, Target) of
        false ->
            #{functions => [], notes => [], flows => [], missing => [label(Target)]};
        true ->
            Registered = registered(Modules),
            First = entry(Modules, Target, 0, <<"the operation's function">>),
            walk(Modules, Registered, [{Target, 0, #{}}], Depth,
                 #{order => [Target], entries => #{Target => First},
                   analysed => #{Target => [#{}]}, notes => [], flows => []})
    end.

defined(Modules, {M, F, A}) ->
    case Modules of
        #{M := #{functions := #{{F, A} := _}}} -> true;
        _ -> false
    end.

%% Breadth first; a function is read once for each set of arguments its callers bind.
walk(_Modules, _Registered, [], _Depth, State) ->
    #{order := Order, entries := Entries, notes := Notes, flows := Flows} = State,
    #{functions => [maps:get(K, Entries) || K <- Order],
      notes => dedup(lists:reverse(Notes)),
      flows => lists:usort(Flows),
      missing => []};
walk(Modules, Registered, [{_Mfa, D, _} | Queue], Depth, State) when D >= Depth ->
    walk(Modules, Registered, Queue, Depth, State);
walk(Modules, Registered, [{Mfa, D, Bindings} | Queue], Depth, State0) ->
    {Calls, Notes, Flows} = calls_of(Modules, Registered, Mfa, Bindings),
    State1 = State0#{notes := lists:reverse(Notes) ++ maps:get(notes, State0),
                     flows := Flows ++ maps:get(flows, State0)},
    {Queue1, State} = lists:foldl(fun(Call, Acc) -> queue_call(Modules, Mfa, D, Call, Acc) end,
                                  {Queue, State1}, Calls),
    walk(Modules, Registered, Queue1, Depth, State).

queue_call(Modules, Mfa, D, {Callee, Via, CalleeBindings}, {Q, S = #{entries := E, order := O, analysed := An}}) ->
    Key = binding_key(CalleeBindings),
    Seen = maps:get(Callee, An, []),
    Known = is_map_key(Callee, E),
    Fresh = not lists:member(Key, Seen),
    if
        Callee =:= Mfa, not Fresh ->
            {Q, S#{entries := E#{Mfa := (maps:get(Mfa, E))#{recursive := true}}}};
        Known, not Fresh; Known, length(Seen) >= ?MAX_BINDINGS ->
            {Q, S};
        Known ->
            %% Known, but called with other arguments bound: read again with those.
            #{depth := CalleeDepth} = maps:get(Callee, E),
            {Q ++ [{Callee, CalleeDepth, CalleeBindings}], S#{analysed := An#{Callee => Seen ++ [Key]}}};
        true ->
            New = entry(Modules, Callee, D + 1, Via),
            {Q ++ [{Callee, D + 1, CalleeBindings}],
             S#{entries := E#{Callee => New}, order := O ++ [Callee], analysed := An#{Callee => [Key]}}}
    end.

binding_key(Bindings) -> maps:map(fun(_, {Value, _From}) -> Value end, Bindings).

dedup(List) -> dedup(List, #{}).
dedup([], _) -> [];
dedup([X | T], Seen) when is_map_key(X, Seen) -> dedup(T, Seen);
dedup([X | T], Seen) -> [X | dedup(T, Seen#{X => true})].

entry(Modules, {M, F, A}, Depth, Via) ->
    #{file := File, functions := #{{F, A} := {Line, _}}} = maps:get(M, Modules),
    #{module => text(atom_to_list(M)), qualname => text(io_lib:format("~ts/~b", [atom_to_list(F), A])),
      file => text(File), line => Line, depth => Depth, via => text(Via), recursive => false}.

label({M, F, A}) ->
    text(io_lib:format("~ts:~ts/~b", [quoted(M), quoted(F), A])).

quoted(Atom) -> io_lib:format("~tw", [Atom]).

text(Chars) -> unicode:characters_to_binary(Chars).

%% Names processes register under: gen_server:start_link({local, Name}, Module, …).
registered(Modules) ->
    maps:fold(
      fun(_M, #{functions := Fs}, Acc) ->
              lists:foldl(
                fun({_, Clauses}, Acc2) ->
                        fold_calls(fun({call, _, {remote, _, {atom, _, gen_server}, {atom, _, Start}},
                                        [{tuple, _, [{atom, _, Scope}, {atom, _, Name}]}, {atom, _, Mod} | _]}, A)
                                         when (Start =:= start_link orelse Start =:= start),
                                              (Scope =:= local orelse Scope =:= global) ->
                                           A#{Name => Mod};
                                      (_, A) ->
                                           A
                                   end, Acc2, Clauses)
                end, Acc, maps:values(Fs))
      end, #{}, Modules).

%% Every node of the abstract forms, depth first, with an accumulator.
fold_calls(Fun, Acc, Node) when is_tuple(Node) ->
    fold_calls(Fun, Fun(Node, Acc), tuple_to_list(Node));
fold_calls(Fun, Acc, [H | T]) ->
    fold_calls(Fun, fold_calls(Fun, Acc, H), T);
fold_calls(_Fun, Acc, _) ->
    Acc.

%% The calls of one function, each clause with the arguments its caller binds.
calls_of(Modules, Registered, {M, F, A} = Mfa, Bindings) ->
    #{functions := #{{F, A} := {_, Clauses}}} = maps:get(M, Modules),
    Ctx0 = #{modules => Modules, module => M, caller => label(Mfa), registered => Registered},
    {Calls, Notes, Flows} =
        lists:foldl(
          fun({clause, _, Patterns, Guards, Body}, Acc) ->
                  Ctx = Ctx0#{vars => bound_vars(Patterns, Bindings)},
                  fold_calls(fun(Node, Acc1) -> visit(Node, Acc1, Ctx) end, Acc, [Guards, Body])
          end, {[], [], []}, Clauses),
    ByLine = fun(L) -> lists:keysort(1, lists:reverse(L)) end,
    {[C || {_, C} <- ByLine(Calls)], [N || {_, N} <- ByLine(Notes)], Flows}.

%% A clause's parameters named by a variable (`Server', `Server = Name') with what the caller
%% binds them to.
bound_vars(Patterns, Bindings) ->
    maps:from_list(
      [{V, Value} || {P, I} <- lists:zip(Patterns, lists:seq(0, length(Patterns) - 1)),
                     {ok, Value} <- [maps:find(I, Bindings)],
                     V <- param_names(P)]).

param_names({var, _, '_'}) -> [];
param_names({var, _, V}) -> [V];
param_names({match, _, L, R}) -> param_names(L) ++ param_names(R);
param_names(_) -> [].

%% What a call's arguments bind in the callee: each argument that is a module of the source or
%% a registered name as written (an atom, a `-define'd one) or a variable the caller has bound,
%% with where it was passed.
argument_bindings(none, _Ctx, _Line) ->
    #{};
argument_bindings(Args, #{caller := Caller} = Ctx, Line) ->
    From = text(io_lib:format("~ts at line ~b", [Caller, Line])),
    maps:from_list(
      [{I, Bound} || {Arg, I} <- lists:zip(Args, lists:seq(0, length(Args) - 1)),
                     Bound <- argument_value(Arg, Ctx, From)]).

argument_value({atom, _, A}, #{modules := Modules, registered := Registered}, From) ->
    %% Only a module of the source or a name one registers under can matter to the callee.
    [{A, From} || is_map_key(A, Modules) orelse is_map_key(A, Registered)];
argument_value({var, _, V}, #{vars := Vars}, _From) ->
    case Vars of #{V := Bound} -> [Bound]; _ -> [] end;
argument_value(_, _, _) -> [].

bound_text(undefined) -> "";
bound_text({V, Value, From}) -> io_lib:format(" (~ts: ~ts, passed by ~ts)", [atom_to_list(V), quoted(Value), From]).

visit({call, L, {remote, _, {atom, _, gen_server}, {atom, _, Kind}}, [Target, Msg | _]}, Acc, Ctx)
  when Kind =:= call; Kind =:= cast ->
    Handler = case Kind of call -> {handle_call, 3}; cast -> {handle_cast, 2} end,
    flow(Acc, Ctx, line(L), Target, Msg, Handler, "gen_server:" ++ atom_to_list(Kind));
visit({op, L, '!', Target, Msg}, Acc, Ctx) ->
    flow(Acc, Ctx, line(L), Target, Msg, {handle_info, 2}, "!");
visit({call, L, {remote, _, {atom, _, erlang}, {atom, _, send}}, [Target, Msg | _]}, Acc, Ctx) ->
    flow(Acc, Ctx, line(L), Target, Msg, {handle_info, 2}, "erlang:send");
visit({call, L, {atom, _, apply}, _}, Acc, Ctx) ->
    note(Acc, Ctx, line(L), <<"apply">>, <<"apply: the function is chosen at run time, the source does not say which">>);
visit({call, L, {remote, _, {atom, _, erlang}, {atom, _, apply}}, _}, Acc, Ctx) ->
    note(Acc, Ctx, line(L), <<"erlang:apply">>, <<"apply: the function is chosen at run time, the source does not say which">>);
visit({call, L, {atom, _, Spawn}, [{atom, _, M}, {atom, _, F}, Args]}, Acc, Ctx)
  when Spawn =:= spawn; Spawn =:= spawn_link; Spawn =:= spawn_monitor ->
    %% A new process running M:F(Args…): followed when the arguments are a list as written.
    case list_length(Args) of
        none -> Acc;
        N -> call(Acc, Ctx, line(L), M, F, N, atom_to_list(Spawn) ++ " ", list_items(Args), undefined)
    end;
visit({call, L, {atom, _, F}, Args}, Acc, Ctx) ->
    call(Acc, Ctx, line(L), maps:get(module, Ctx), F, length(Args), "", Args, undefined);
visit({call, L, {remote, _, {atom, _, M}, {atom, _, F}}, Args}, Acc, Ctx) ->
    call(Acc, Ctx, line(L), M, F, length(Args), "", Args, undefined);
visit({call, L, {remote, _, {var, _, V}, {atom, _, F}}, Args}, Acc, #{vars := Vars} = Ctx)
  when is_map_key(V, Vars) ->
    %% A module its caller passes.
    {M, From} = maps:get(V, Vars),
    call(Acc, Ctx, line(L), M, F, length(Args), "", Args, {V, M, From});
visit({call, L, {remote, _, Mod, _}, _}, Acc, Ctx) ->
    note(Acc, Ctx, line(L), text([erl_pp:expr(Mod), ":…"]),
         <<"a call on a module held in a variable: which module is known only at run time">>);
visit({call, L, {var, _, V}, _}, Acc, Ctx) ->
    note(Acc, Ctx, line(L), text(atom_to_list(V) ++ "()"),
         <<"a function value called: which function it holds is known only at run time">>);
visit({'fun', L, {function, F, A}}, Acc, Ctx) when is_atom(F), is_integer(A) ->
    call(Acc, Ctx, line(L), maps:get(module, Ctx), F, A, "fun ", none, undefined);
visit({'fun', L, {function, {atom, _, M}, {atom, _, F}, {integer, _, A}}}, Acc, Ctx) ->
    call(Acc, Ctx, line(L), M, F, A, "fun ", none, undefined);
visit({'fun', L, {clauses, _}}, Acc, Ctx) ->
    anonymous(Acc, Ctx, line(L));
visit({named_fun, L, _, _}, Acc, Ctx) ->
    anonymous(Acc, Ctx, line(L));
visit(_, Acc, _) ->
    Acc.

list_items({nil, _}) -> [];
list_items({cons, _, Head, Tail}) -> [Head | list_items(Tail)].

list_length({nil, _}) -> 0;
list_length({cons, _, _, Tail}) ->
    case list_length(Tail) of none -> none; N -> N + 1 end;
list_length(_) -> none.

anonymous(Acc, Ctx, Line) ->
    note(Acc, Ctx, Line, <<"fun">>,
         <<"an anonymous function: compiled to a function of its own with a generated name the plan cannot name; its own time stays in its caller's, the calls it makes to the source are followed">>).

call({C, N, Fl} = Acc, #{modules := Modules, caller := Caller} = Ctx, Line, M, F, A, Prefix, Args, Bound) ->
    case defined(Modules, {M, F, A}) of
        true ->
            Via = io_lib:format("~ts calls ~ts~ts at line ~b~ts",
                                [Caller, Prefix, label({M, F, A}), Line, bound_text(Bound)]),
            {[{Line, {{M, F, A}, text(Via), argument_bindings(Args, Ctx, Line)}} | C], N, Fl};
        false ->
            Acc
    end.

note({C, N, Fl}, #{caller := Caller}, Line, Call, Reason) ->
    Note = #{caller => Caller, call => Call, line => Line, kind => <<"unknown">>, reason => Reason},
    {C, [{Line, Note} | N], Fl}.

%% A message to a process: to the server module's handler when the target names it.
flow({C, N, Fl} = Acc, Ctx = #{modules := Modules, registered := Registered, caller := Caller, vars := Vars},
     Line, Target, Msg, {Handler, HArity}, Word) ->
    {Named, Bound} = case Target of
                         {atom, _, Name} -> {Name, undefined};
                         {tuple, _, [{atom, _, global}, {atom, _, Name}]} -> {Name, undefined};
                         {var, _, V} when is_map_key(V, Vars) ->
                             {Value, From} = maps:get(V, Vars),
                             {Value, {V, Value, From}};
                         _ -> {undefined, undefined}
                     end,
    Server = case Named of undefined -> undefined; _ -> maps:get(Named, Registered, Named) end,
    case Server =/= undefined andalso defined(Modules, {Server, Handler, HArity}) of
        true ->
            Tag = tag(Msg),
            %% The line the via is shown on names the handler.
            Via = io_lib:format("~ts sends ~ts with ~ts at line ~b~ts",
                                [Caller, tag_text(Tag), Word, Line, bound_text(Bound)]),
            Kind = case Handler of handle_call -> <<"call">>; handle_cast -> <<"cast">>; _ -> <<"info">> end,
            Flow = #{kind => Kind, server => text(atom_to_list(Server)),
                     tag => case Tag of undefined -> null; _ -> text(atom_to_list(Tag)) end},
            {[{Line, {{Server, Handler, HArity}, text(Via), #{}}} | C], N, [Flow | Fl]};
        false ->
            Reason = case Server of
                         undefined ->
                             <<"the receiving process is known only at run time (a pid or a name no module of the source registers under)">>;
                         _ ->
                             text(io_lib:format("the message goes to ~ts, which defines no ~ts/~b in the source",
                                                [quoted(Server), Handler, HArity]))
                     end,
            Call = case Word of
                       "!" -> erl_pp:expr(Target) ++ " ! …";
                       _ -> Word ++ "(" ++ erl_pp:expr(Target) ++ ", …)"
                   end,
            note(Acc, Ctx, Line, text(Call), Reason)
    end.

tag({atom, _, A}) -> A;
tag({tuple, _, [{atom, _, A} | _]}) -> A;
tag(_) -> undefined.

tag_text(undefined) -> "a message";
tag_text(A) -> quoted(A).

%% JSON for the few shapes the answer holds.
json(M) when is_map(M) ->
    ["{", lists:join(",", [[json(text(atom_to_list(K))), ":", json(V)] || {K, V} <- lists:sort(maps:to_list(M))]), "}"];
json(L) when is_list(L) -> ["[", lists:join(",", [json(X) || X <- L]), "]"];
json(true) -> "true";
json(false) -> "false";
json(null) -> "null";
json(N) when is_integer(N) -> integer_to_list(N);
json(B) when is_binary(B) -> [$", [escape(C) || C <- unicode:characters_to_list(B)], $"].

escape($") -> "\\\"";
escape($\\) -> "\\\\";
escape(C) when C < 16#20 -> io_lib:format("\\u~4.16.0b", [C]);
escape(C) -> unicode:characters_to_binary([C]).
