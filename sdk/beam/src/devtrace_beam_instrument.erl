%% @doc Instruments a loaded module from its debug info (`devtrace run --record --instrument'):
%% recompiles it with devtrace_beam_tracer's probes in it and loads the result in place of the
%% module, the way `cover' compiles a module with counters. A probe is a NIF call that records
%% the event directly; the VM's tracing (a match specification run, a trace term built,
%% `enabled/3' and `trace/5' called for each event) is what recording every call and message
%% with trace flags costs, and what this mode leaves out.
%%
%% What is rewritten, in the Erlang abstract format both languages compile to (an Elixir
%% module's debug info gives it, through `elixir_erl'):
%%
%% - each clause of each named function records its call with its arguments, then its return
%%   value or exception (re-raised as it was, with its stack trace);
%% - so does each clause of each anonymous function (`fun', Elixir's `fn' and `&(&1 + 1)',
%%   the functions Elixir's `for' compiles to), under the name the compiler gives it
%%   (`-checkout/1-fun-0-': what the VM reports when it traces the function), with the
%%   arguments it is called with;
%% - `Dest ! Message' and `erlang:send(Dest, Message[, Options])' (Elixir's `send/2') record
%%   the message before it is sent (the probe returns it unchanged);
%% - each clause of a `receive' records the message it matched, and its `after' the atom
%%   `timeout' (what the VM's trace reports a `receive' that timed out as receiving).
%%
%% With `messages' only (OTP's `gen', `gen_server', `gen_statem' under this mode: a
%% GenServer's calls, casts and replies are sent and received there), the sends and receives
%% alone.
-module(devtrace_beam_instrument).

-export([module/2, prepare/2, forms/3, cache_dir/0]).

-define(PROBES, devtrace_beam_tracer).
%% The attribute an instrumented module carries (its value: `calls' or `messages').
-define(PROBED_ATTRIBUTE, devtrace_probes).
%% An anonymous function's name in its probes until the compiler has named it.
-define(PLACEHOLDER, "Devtrace@fun@").
%% The compiler runs in the calling process (the instrumenter, not recorded), not in a process
%% of its own: a new process is traced, and the compiler's every call recorded made it ten
%% times slower (a first `--instrument' run of a Mix project took 29 s, not 3).
-define(COMPILE_OPTIONS, [binary, return_errors, nowarn_unused_vars, no_spawn_compiler_process]).

%% @doc Instruments module `Module' (loaded or on the code path): `What' is `calls' (calls and
%% messages) or `messages'. `ok', or `{error, Reason}' when it has no debug info (`erlc'
%% without `+debug_info'), was compiled in memory, its file is not written yet or holds
%% other code than the loaded module's (`not_written_yet': try again), or it does not compile.
module(Module, What) ->
    %% Loaded first: an instrumented module must never make the code server load it.
    {module, ?PROBES} = code:ensure_loaded(?PROBES),
    case code:which(Module) of
        [_ | _] = File ->
            case holds_loaded_code(Module, File) of
                true -> cached_or_compiled(Module, File, What);
                false -> {error, not_written_yet}
            end;
        Other ->
            {error, {no_beam_file, Other}}
    end.

%% Whether `File' holds the code module `Module' runs (true when it is not loaded, or runs code
%% instrumented from it): Elixir's compiler loads a module before it writes its file, so a
%% module compiled anew (`iex''s `recompile', `mix test' after an edit) runs its new code while
%% the file still holds the old, which must not be loaded in its place.
holds_loaded_code(Module, File) ->
    try {erlang:get_module_info(Module, md5), erlang:get_module_info(Module, attributes)} of
        {Md5, Attributes} ->
            lists:keymember(?PROBED_ATTRIBUTE, 1, Attributes)
                orelse beam_lib:md5(File) =:= {ok, {Module, Md5}}
    catch
        error:badarg -> true
    end.

%% Recompiling takes tens of milliseconds a module (≈ 300 ms for gen_server): the result is kept
%% in a cache directory under a key of the file's bytes, this module's code and the OTP
%% release, so the next run of the same code loads it at once.
cached_or_compiled(Module, File, What) ->
    Cached = cache_file(File, What),
    case Cached =/= none andalso file:read_file(Cached) of
        {ok, Binary} ->
            load(Module, File, Binary);
        _ ->
            case compiled(Module, File, What) of
                {ok, Binary} -> keep(Cached, Binary), load(Module, File, Binary);
                {error, _} = Error -> Error
            end
    end.

%% @doc Compiles the modules of directories `Dirs' with probes into the cache, not loading them
%% (those in `Excluded', a set, left out), on every scheduler at once, and says so on standard
%% error when it compiles any: the first run of a project's code, or of a new version of it.
prepare(Dirs, Excluded) ->
    Missing = [{Module, File}
               || Dir <- Dirs, File <- filelib:wildcard(filename:join(Dir, "*.beam")),
                  Module <- [list_to_atom(filename:basename(File, ".beam"))],
                  not sets:is_element(Module, Excluded),
                  cache_file(File, calls) =/= none,
                  not filelib:is_regular(cache_file(File, calls))],
    Missing =:= [] orelse
        io:format(standard_error,
                  "devtrace: --instrument: compiling probes into ~b modules (once: kept in ~ts)~n",
                  [length(Missing), cache_dir()]),
    Workers = erlang:system_info(schedulers_online),
    Shares = [[M || {I, M} <- lists:enumerate(Missing), I rem Workers =:= W] || W <- lists:seq(0, Workers - 1)],
    Refs = [spawn_monitor(fun() -> unrecorded(), [precompile(M, F) || {M, F} <- Share] end) || Share <- Shares],
    [receive {'DOWN', Ref, process, Pid, _} -> ok end || {Pid, Ref} <- Refs],
    ok.

%% A process of the instrumenter's is none of the program's: it is traced when recording has
%% begun (all new processes are), which would record every call of the compiler it runs.
unrecorded() ->
    _ = erlang:trace(self(), false, [all]),
    ok.

precompile(Module, File) ->
    case compiled(Module, File, calls) of
        {ok, Binary} -> keep(cache_file(File, calls), Binary);
        {error, _} -> ok
    end.

compiled(Module, File, What) ->
    case abstract_code(Module, File) of
        {ok, Forms} -> compile_forms(Module, forms(Module, Forms, What));
        {error, _} = Error -> Error
    end.

%% @doc Where instrumented modules are kept: `$DEVTRACE_BEAM_CACHE', else the user's cache
%% directory (`~/.cache/devtrace/beam' on Linux).
cache_dir() ->
    case os:getenv("DEVTRACE_BEAM_CACHE") of
        Dir when is_list(Dir), Dir =/= "" -> Dir;
        _ -> filename:join(filename:basedir(user_cache, "devtrace"), "beam")
    end.

cache_file(File, What) ->
    case file:read_file(File) of
        {ok, Bytes} ->
            Key = erlang:md5(term_to_binary({Bytes, What, ?MODULE:module_info(md5),
                                             erlang:system_info(otp_release)})),
            Name = lists:flatten([io_lib:format("~2.16.0b", [B]) || <<B>> <= Key]) ++ ".beam",
            filename:join(cache_dir(), Name);
        {error, _} ->
            none
    end.

%% Written whole or not at all (a file of its own renamed into place): two VMs may compile the
%% same module at once. A cache that cannot be written is not an error.
keep(none, _Binary) ->
    ok;
keep(Cached, Binary) ->
    Partial = Cached ++ "." ++ os:getpid() ++ ".part",
    _ = filelib:ensure_dir(Cached),
    case file:write_file(Partial, Binary) of
        ok -> _ = file:rename(Partial, Cached);
        {error, _} -> _ = file:delete(Partial)
    end,
    ok.

abstract_code(Module, File) ->
    case beam_lib:chunks(File, [debug_info]) of
        {ok, {Module, [{debug_info, {debug_info_v1, Backend, Data}}]}} ->
            case catch Backend:debug_info(erlang_v1, Module, Data, []) of
                {ok, Forms} -> {ok, Forms};
                _ -> {error, no_debug_info}
            end;
        {error, beam_lib, {file_error, _, _}} ->
            %% Elixir's compiler loads a module before it writes its file.
            {error, not_written_yet};
        _ ->
            {error, no_debug_info}
    end.

compile_forms(Module, Forms) ->
    case compile:forms(Forms, ?COMPILE_OPTIONS) of
        {ok, Module, Binary} -> {ok, Binary};
        {ok, Module, Binary, _Warnings} -> {ok, Binary};
        {error, Errors, _Warnings} -> {error, {compile, Errors}}
    end.

%% Loads the instrumented code as the module's current code; processes running the old code
%% move to it at their next call from outside the module. OTP's modules are sticky.
load(Module, File, Binary) ->
    Sticky = code:is_sticky(Module),
    Sticky andalso code:unstick_mod(Module),
    _ = code:soft_purge(Module),
    Result = code:load_binary(Module, File, Binary),
    Sticky andalso code:stick_mod(Module),
    case Result of
        {module, Module} -> ok;
        {error, _} = Error -> Error
    end.

%% @doc The forms of module `Module' with the probes compiled in (see the module doc).
forms(Module, Forms, What) ->
    Own = {Module, [{Name, Arity} || {function, _, Name, Arity, _} <- Forms]},
    Probed = lists:flatmap(fun({attribute, Anno, module, _} = Form) ->
                                   [Form, {attribute, Anno, ?PROBED_ATTRIBUTE, What}];
                              (Form) ->
                                   [form(Own, Form, What)]
                           end, Forms),
    case placeholders(Probed) of
        [] -> Probed;
        _ -> rename(Probed, compiler_names(Probed))
    end.

%% The names the compiler gives the anonymous functions of `Forms', by the placeholder their
%% probes carry. Its first pass names each fun `-f/1-fun-K-' (the name the VM reports when it
%% traces the function; a fun applied where it is made keeps it, though the compiler then
%% inlines its code); a named fun's function is named later (`-g/0-Loop/1-K-'), so its name
%% is read from the functions compiled.
compiler_names(Forms) ->
    Options = [nowarn_shadow_vars | ?COMPILE_OPTIONS],
    FunNames = case compile:forms(Forms, [to_core0 | Options]) of
                   {ok, _, Core} -> cerl_trees:fold(fun core_name/2, #{}, Core);
                   _ -> #{}
               end,
    case [P || P <- placeholders(Forms), named_fun(P) =/= none] of
        [] -> FunNames;
        _ -> maps:merge(FunNames, lifted_names(compile:forms(Forms, [to_asm | Options])))
    end.

core_name(Tree, Names) ->
    case cerl:type(Tree) =:= 'fun' andalso lists:keyfind(id, 1, cerl:get_ann(Tree)) of
        {id, {_, _, Name}} ->
            case own_placeholders(cerl:fun_body(Tree)) of
                [Placeholder] -> Names#{Placeholder => Name};
                _ -> Names
            end;
        _ ->
            Names
    end.

%% The placeholders of `Tree' outside the funs in it.
own_placeholders(Tree) ->
    case cerl:type(Tree) of
        'fun' -> [];
        literal -> lists:usort(placeholders(cerl:concrete(Tree)));
        _ -> lists:usort(lists:flatmap(fun own_placeholders/1, lists:append(cerl:subtrees(Tree))))
    end.

%% A named fun's function (`-g/0-Loop/1-K-') holds its placeholder and those of the funs
%% inside it the compiler inlined: its own is the outermost of those naming `Loop/1'.
lifted_names({ok, _, {_, _, _, Functions, _}}) ->
    maps:from_list(
      [{P, Name}
       || {function, Name, _, _, Code} <- Functions,
          Ps <- [[P || P <- lists:usort(placeholders(Code)), lifts(Name, named_fun(P))]],
          Ps =/= [],
          P <- [hd(lists:sort(fun made_before/2, Ps))]]);
lifted_names(_) ->
    #{}.

%% Whether `Function' may be the one the compiler made of a named fun `Named' (`Loop/1').
lifts(_Function, none) -> false;
lifts(Function, Named) -> string:find(atom_to_list(Function), "-" ++ Named ++ "-") =/= nomatch.

%% `Loop/1' for a named fun's placeholder, else `none'.
named_fun(Placeholder) ->
    case string:split(lists:nthtail(length(?PLACEHOLDER), atom_to_list(Placeholder)), "@") of
        [_, Named] -> Named;
        [_] -> none
    end.

made_before(A, B) ->
    Number = fun(P) ->
                     [N | _] = string:split(lists:nthtail(length(?PLACEHOLDER), atom_to_list(P)), "@"),
                     list_to_integer(N)
             end,
    Number(A) =< Number(B).

placeholders(Atom) when is_atom(Atom) ->
    [Atom || lists:prefix(?PLACEHOLDER, atom_to_list(Atom))];
placeholders(Tuple) when is_tuple(Tuple) ->
    placeholders(tuple_to_list(Tuple));
placeholders(List) when is_list(List) ->
    lists:flatmap(fun placeholders/1, List);
placeholders(_) ->
    [].

%% `Forms' with each placeholder the compiler named replaced by its name.
rename({atom, L, Atom}, Names) ->
    {atom, L, maps:get(Atom, Names, Atom)};
rename(Tuple, Names) when is_tuple(Tuple) ->
    list_to_tuple(rename(tuple_to_list(Tuple), Names));
rename(List, Names) when is_list(List) ->
    [rename(E, Names) || E <- List];
rename(Other, _Names) ->
    Other.

form(Own, {function, Line, Name, Arity, Clauses}, What) ->
    Messages = [messages(Clause) || Clause <- Clauses],
    Probed = case What of
                 calls -> [probed_clause(Own, Name, Arity, "", funs(Own, C)) || C <- Messages];
                 messages -> Messages
             end,
    {function, Line, Name, Arity, Probed};
form(_Own, Form, _What) ->
    Form.

%% `Term' (a clause, an expression) with each anonymous function in it probed as a function
%% is, under a placeholder name until the compiler has named it (compiler_names/1). A named
%% fun's calls of itself at an end stay tail calls, as the module's own functions' do.
funs(Own, {'fun', L, {clauses, Clauses}}) ->
    {'fun', L, {clauses, fun_clauses(Own, "", Clauses)}};
funs({Module, Local}, {named_fun, L, Self, [{clause, _, Patterns, _, _} | _] = Clauses}) ->
    Arity = length(Patterns),
    Own = {Module, [{{var, Self}, Arity} | Local]},
    Named = lists:concat(["@", Self, "/", Arity]),
    {named_fun, L, Self, fun_clauses(Own, Named, Clauses)};
funs(Own, Tuple) when is_tuple(Tuple) ->
    list_to_tuple(funs(Own, tuple_to_list(Tuple)));
funs(Own, List) when is_list(List) ->
    [funs(Own, E) || E <- List];
funs(_Own, Other) ->
    Other.

%% A fun's placeholder: `Devtrace@fun@N', a named fun's `Devtrace@fun@N@Loop/1', N counting
%% up as they are made (so an outer fun's N is below those of the funs inside it).
fun_clauses(Own, Named, Clauses) ->
    N = integer_to_list(erlang:unique_integer([positive, monotonic])),
    Placeholder = list_to_atom(?PLACEHOLDER ++ N ++ Named),
    [probed_clause(Own, Placeholder, length(Patterns), "F" ++ N ++ "_", funs(Own, C))
     || {clause, _, Patterns, _, _} = C <- Clauses].

%% A clause recording its call, then its return or exception:
%%   f(P1 = A1, ...) when G -> enter(M, f, [A1, ...]),
%%       try Body of R -> leave(M, f, N, R) catch C:E:S -> raised(M, f, N, C, E), erlang:raise(C, E, S) end.
%% A clause whose body ends in calls of the module's own functions (a loop: `loop(S + 1)' at
%% the end of a receive clause) keeps them tail calls — recursion in constant stack, as
%% without the probes: the body returns what the call needs, and the call is made from the
%% `try''s `of' section, outside its catch (see tail_calls/3).
%% (`Prefix' keeps a fun's variables apart from those of the clause around it.)
probed_clause({Module, _} = Own, Name, Arity, Prefix, {clause, L, Patterns, Guards, Body}) ->
    Args = [var(L, Prefix ++ "Arg", I) || I <- lists:seq(1, Arity)],
    Head = [{match, L, P, A} || {P, A} <- lists:zip(Patterns, Args)],
    Id = [{atom, L, Module}, {atom, L, Name}, {integer, L, Arity}],
    Enter = probe(L, enter, lists:droplast(Id) ++ [list(L, Args)]),
    [Result, Class, Reason, Stack] = [var(L, Prefix ++ N, 0) || N <- ["Result", "Class", "Reason", "Stack"]],
    Raised = {clause, L, [{tuple, L, [Class, Reason, Stack]}], [],
              [probe(L, raised, Id ++ [Class, Reason]),
               remote(L, erlang, raise, [Class, Reason, Stack])]},
    {Try, Ends} = case tail_calls(Body, Own, L) of
                      {_, []} ->
                          {Body, [{clause, L, [Result], [], [probe(L, leave, Id ++ [Result])]}]};
                      {Returning, Sites} ->
                          {Returning,
                           [{clause, L, [{tuple, L, [{integer, L, 0}, Result]}], [],
                             [probe(L, leave, Id ++ [Result])]}
                            | [tail_clause(L, Id, Prefix, Site) || Site <- lists:reverse(Sites)]]}
                  end,
    {clause, L, Head, Guards, [Enter, {'try', L, Try, Ends, [Raised], []}]}.

%% `Body' with each of its ends returning `{0, Value}', or `{I, Args...}' for the I-th call of
%% one of the module's own functions at an end (its site: `{I, Function, Arity}'); the sites.
%% Ends are found through blocks, `case', `if', `receive' and the right side of `orelse' and
%% `andalso'; a call of another module's function, a fun's or a BIF's stays in the body
%% (nested, as it ran within this call).
tail_calls(Body, Own, L) ->
    tail_body(Body, Own, L, []).

tail({call, CL, {atom, _, F} = Callee, Args} = Call, {_, Local}, L, Sites) ->
    case lists:member({F, length(Args)}, Local) of
        true -> site(CL, Callee, Args, Sites);
        false -> returned(Call, L, Sites)
    end;
tail({call, CL, {remote, _, {atom, _, M}, {atom, _, F}} = Callee, Args} = Call, {M, Local}, L, Sites) ->
    case lists:member({F, length(Args)}, Local) of
        true -> site(CL, Callee, Args, Sites);
        false -> returned(Call, L, Sites)
    end;
tail({call, CL, {var, _, V} = Callee, Args} = Call, {_, Local}, L, Sites) ->
    case lists:member({{var, V}, length(Args)}, Local) of
        true -> site(CL, Callee, Args, Sites);
        false -> returned(Call, L, Sites)
    end;
tail({block, BL, Exprs}, Own, L, Sites) ->
    {Last, Sites1} = tail(lists:last(Exprs), Own, L, Sites),
    {{block, BL, lists:droplast(Exprs) ++ [Last]}, Sites1};
tail({'case', CL, Expr, Clauses}, Own, L, Sites) ->
    {Clauses1, Sites1} = tail_clauses(Clauses, Own, L, Sites),
    {{'case', CL, Expr, Clauses1}, Sites1};
tail({'if', IL, Clauses}, Own, L, Sites) ->
    {Clauses1, Sites1} = tail_clauses(Clauses, Own, L, Sites),
    {{'if', IL, Clauses1}, Sites1};
tail({'receive', RL, Clauses}, Own, L, Sites) ->
    {Clauses1, Sites1} = tail_clauses(Clauses, Own, L, Sites),
    {{'receive', RL, Clauses1}, Sites1};
tail({'receive', RL, Clauses, Timeout, After}, Own, L, Sites) ->
    {Clauses1, Sites1} = tail_clauses(Clauses, Own, L, Sites),
    {After1, Sites2} = tail_body(After, Own, L, Sites1),
    {{'receive', RL, Clauses1, Timeout, After1}, Sites2};
tail({op, OL, Op, Left, Right} = Expr, Own, L, Sites) when Op =:= 'orelse'; Op =:= 'andalso' ->
    case tail(Right, Own, L, Sites) of
        {_, Sites} -> returned(Expr, L, Sites);
        {Right1, Sites1} -> {short_circuit(OL, Op, Left, Right1), Sites1}
    end;
tail(Expr, _Own, L, Sites) ->
    returned(Expr, L, Sites).

%% `Left orelse Right' ending in a call of the module's own (a loop: `done() orelse loop()') as
%% the `case' the compiler makes of it, so that its other end returns `{0, Left}'.
short_circuit(L, Op, Left, Right) ->
    Ends = case Op of 'orelse' -> true; 'andalso' -> false end,
    Other = var(L, "Operand", erlang:unique_integer([positive])),
    {'case', L, Left,
     [{clause, L, [{atom, L, Ends}], [], [{tuple, L, [{integer, L, 0}, {atom, L, Ends}]}]},
      {clause, L, [{atom, L, not Ends}], [], [Right]},
      {clause, L, [Other], [], [remote(L, erlang, error, [{tuple, L, [{atom, L, badarg}, Other]}])]}]}.

tail_clauses(Clauses, Own, L, Sites) ->
    lists:mapfoldl(fun({clause, CL, Patterns, Guards, Body}, Acc) ->
                           {Body1, Acc1} = tail_body(Body, Own, L, Acc),
                           {{clause, CL, Patterns, Guards, Body1}, Acc1}
                   end, Sites, Clauses).

tail_body(Body, Own, L, Sites) ->
    {Last, Sites1} = tail(lists:last(Body), Own, L, Sites),
    {lists:droplast(Body) ++ [Last], Sites1}.

returned(Expr, L, Sites) ->
    {{tuple, L, [{integer, L, 0}, Expr]}, Sites}.

site(L, Callee, Args, Sites) ->
    I = length(Sites) + 1,
    {{tuple, L, [{integer, L, I} | Args]}, [{I, Callee, length(Args)} | Sites]}.

%% `{I, V1, ...} -> tail(M, f, N), Callee(V1, ...)': the call ends this one's span, then is made.
tail_clause(L, Id, Prefix, {I, Callee, Arity}) ->
    Vars = [var(L, Prefix ++ "Tail" ++ integer_to_list(I) ++ "_", J) || J <- lists:seq(1, Arity)],
    {clause, L, [{tuple, L, [{integer, L, I} | Vars]}], [],
     [probe(L, tail, Id), {call, L, Callee, Vars}]}.

%% A send's probe: told the destination when it is a variable or a name, which the probe can
%% read again without running anything twice (`gen:call' sends its request to a pid in a
%% variable: who a call was made to, even when the request is never taken).
sent_probe(L, {var, _, _} = Dest, Message) -> probe(L, sent, [Dest, expr(Message)]);
sent_probe(L, {atom, _, _} = Dest, Message) -> probe(L, sent, [Dest, expr(Message)]);
sent_probe(L, _Dest, Message) -> probe(L, sent, [expr(Message)]).

%% Sends and receives with their probes, anywhere in a clause's body (a pattern or a guard
%% holds neither).
messages({clause, L, Patterns, Guards, Body}) ->
    {clause, L, Patterns, Guards, expr(Body)}.

expr({op, L, '!', Dest, Message}) ->
    {op, L, '!', expr(Dest), sent_probe(L, Dest, Message)};
expr({call, L, {remote, _, {atom, _, erlang}, {atom, _, send}} = Send, [Dest, Message | Options]}) ->
    {call, L, Send, [expr(Dest), sent_probe(L, Dest, Message) | expr(Options)]};
expr({'receive', L, Clauses}) ->
    {'receive', L, [received_clause(C) || C <- Clauses]};
expr({'receive', L, Clauses, Timeout, After}) ->
    %% A timeout as the VM's trace reports it: the atom `timeout' received.
    {'receive', L, [received_clause(C) || C <- Clauses], expr(Timeout),
     [probe(L, received, [{atom, L, timeout}]) | expr(After)]};
expr(Tuple) when is_tuple(Tuple) ->
    list_to_tuple(expr(tuple_to_list(Tuple)));
expr(List) when is_list(List) ->
    [expr(E) || E <- List];
expr(Other) ->
    Other.

%% `Pattern when G -> Body' as `(Pattern = Message) when G -> received(Message), Body'.
received_clause({clause, L, [Pattern], Guards, Body}) ->
    Message = var(L, "Message", erlang:unique_integer([positive])),
    {clause, L, [{match, L, Pattern, Message}], Guards,
     [probe(L, received, [Message]) | expr(Body)]}.

probe(L, Name, Args) ->
    remote(L, ?PROBES, Name, Args).

remote(L, Module, Name, Args) ->
    {call, L, {remote, L, {atom, L, Module}, {atom, L, Name}}, Args}.

%% A variable a program is unlikely to name (Elixir's own are `_@N' and `V@N').
var(L, Name, I) ->
    {var, L, list_to_atom("Devtrace@" ++ Name ++ integer_to_list(I))}.

list(L, Items) ->
    lists:foldr(fun(Item, Tail) -> {cons, L, Item, Tail} end, {nil, L}, Items).
