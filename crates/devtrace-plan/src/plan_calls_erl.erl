#!/usr/bin/env escript
%% devtrace plan for Erlang: reads the source with epp:parse_file (parsed, never compiled or
%% run) and follows calls from one function to a depth. Shipped inside devtrace's binary and
%% run by `escript'; arguments: DEPTH MODULE FUNCTION ARITY ROOT...; answers one JSON object on
%% stdout: functions, notes, flows, missing.
-mode(compile).

-define(SKIP_DIRS, ["_build", "deps", "node_modules", ".git"]).
-define(MAX_FILES, 2000).

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
            walk(Modules, Registered, [{Target, 0}], Depth,
                 #{order => [Target], entries => #{Target => First}, notes => [], flows => []})
    end.

defined(Modules, {M, F, A}) ->
    case Modules of
        #{M := #{functions := #{{F, A} := _}}} -> true;
        _ -> false
    end.

walk(_Modules, _Registered, [], _Depth, State) ->
    #{order := Order, entries := Entries, notes := Notes, flows := Flows} = State,
    #{functions => [maps:get(K, Entries) || K <- Order],
      notes => lists:reverse(Notes),
      flows => lists:usort(Flows),
      missing => []};
walk(Modules, Registered, [{_Mfa, D} | Queue], Depth, State) when D >= Depth ->
    walk(Modules, Registered, Queue, Depth, State);
walk(Modules, Registered, [{Mfa, D} | Queue], Depth, State0) ->
    {Calls, Notes, Flows} = calls_of(Modules, Registered, Mfa),
    State1 = State0#{notes := lists:reverse(Notes) ++ maps:get(notes, State0),
                     flows := Flows ++ maps:get(flows, State0)},
    {Queue1, State} =
        lists:foldl(
          fun({Callee, Via}, {Q, S = #{entries := E, order := O}}) ->
                  if
                      Callee =:= Mfa ->
                          {Q, S#{entries := E#{Mfa := (maps:get(Mfa, E))#{recursive := true}}}};
                      is_map_key(Callee, E) ->
                          {Q, S};
                      true ->
                          New = entry(Modules, Callee, D + 1, Via),
                          {Q ++ [{Callee, D + 1}], S#{entries := E#{Callee => New}, order := O ++ [Callee]}}
                  end
          end, {Queue, State1}, Calls),
    walk(Modules, Registered, Queue1, Depth, State).

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

calls_of(Modules, Registered, {M, F, A} = Mfa) ->
    #{functions := #{{F, A} := {_, Clauses}}} = maps:get(M, Modules),
    Ctx = #{modules => Modules, module => M, caller => label(Mfa), registered => Registered},
    {Calls, Notes, Flows} = fold_calls(fun(Node, Acc) -> visit(Node, Acc, Ctx) end, {[], [], []}, Clauses),
    ByLine = fun(L) -> lists:keysort(1, lists:reverse(L)) end,
    {[C || {_, C} <- ByLine(Calls)], [N || {_, N} <- ByLine(Notes)], Flows}.

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
        N -> call(Acc, Ctx, line(L), M, F, N, atom_to_list(Spawn) ++ " ")
    end;
visit({call, L, {atom, _, F}, Args}, Acc, Ctx) ->
    call(Acc, Ctx, line(L), maps:get(module, Ctx), F, length(Args), "");
visit({call, L, {remote, _, {atom, _, M}, {atom, _, F}}, Args}, Acc, Ctx) ->
    call(Acc, Ctx, line(L), M, F, length(Args), "");
visit({call, L, {remote, _, Mod, _}, _}, Acc, Ctx) ->
    note(Acc, Ctx, line(L), text([erl_pp:expr(Mod), ":…"]),
         <<"a call on a module held in a variable: which module is known only at run time">>);
visit({call, L, {var, _, V}, _}, Acc, Ctx) ->
    note(Acc, Ctx, line(L), text(atom_to_list(V) ++ "()"),
         <<"a function value called: which function it holds is known only at run time">>);
visit({'fun', L, {function, F, A}}, Acc, Ctx) when is_atom(F), is_integer(A) ->
    call(Acc, Ctx, line(L), maps:get(module, Ctx), F, A, "fun ");
visit({'fun', L, {function, {atom, _, M}, {atom, _, F}, {integer, _, A}}}, Acc, Ctx) ->
    call(Acc, Ctx, line(L), M, F, A, "fun ");
visit({'fun', L, {clauses, _}}, Acc, Ctx) ->
    anonymous(Acc, Ctx, line(L));
visit({named_fun, L, _, _}, Acc, Ctx) ->
    anonymous(Acc, Ctx, line(L));
visit(_, Acc, _) ->
    Acc.

list_length({nil, _}) -> 0;
list_length({cons, _, _, Tail}) ->
    case list_length(Tail) of none -> none; N -> N + 1 end;
list_length(_) -> none.

anonymous(Acc, Ctx, Line) ->
    note(Acc, Ctx, Line, <<"fun">>,
         <<"an anonymous function: compiled to a function of its own with a generated name the plan cannot name; its own time stays in its caller's, the calls it makes to the source are followed">>).

call({C, N, Fl} = Acc, #{modules := Modules, caller := Caller}, Line, M, F, A, Prefix) ->
    case defined(Modules, {M, F, A}) of
        true ->
            Via = io_lib:format("~ts calls ~ts~ts at line ~b", [Caller, Prefix, label({M, F, A}), Line]),
            {[{Line, {{M, F, A}, text(Via)}} | C], N, Fl};
        false ->
            Acc
    end.

note({C, N, Fl}, #{caller := Caller}, Line, Call, Reason) ->
    Note = #{caller => Caller, call => Call, line => Line, kind => <<"unknown">>, reason => Reason},
    {C, [{Line, Note} | N], Fl}.

%% A message to a process: to the server module's handler when the target names it.
flow({C, N, Fl} = Acc, Ctx = #{modules := Modules, registered := Registered, caller := Caller},
     Line, Target, Msg, {Handler, HArity}, Word) ->
    Server = case Target of
                 {atom, _, Name} -> maps:get(Name, Registered, Name);
                 {tuple, _, [{atom, _, global}, {atom, _, Name}]} -> maps:get(Name, Registered, Name);
                 _ -> undefined
             end,
    case Server =/= undefined andalso defined(Modules, {Server, Handler, HArity}) of
        true ->
            Tag = tag(Msg),
            %% The line the via is shown on names the handler.
            Via = io_lib:format("~ts sends ~ts with ~ts at line ~b", [Caller, tag_text(Tag), Word, Line]),
            Kind = case Handler of handle_call -> <<"call">>; handle_cast -> <<"cast">>; _ -> <<"info">> end,
            Flow = #{kind => Kind, server => text(atom_to_list(Server)),
                     tag => case Tag of undefined -> null; _ -> text(atom_to_list(Tag)) end},
            {[{Line, {{Server, Handler, HArity}, text(Via)}} | C], N, [Flow | Fl]};
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
