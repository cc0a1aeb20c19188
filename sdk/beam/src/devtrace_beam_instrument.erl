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
%% - `Dest ! Message' and `erlang:send(Dest, Message[, Options])' (Elixir's `send/2') record
%%   the message before it is sent (the probe returns it unchanged);
%% - each clause of a `receive' records the message it matched.
%%
%% With `messages' only (OTP's `gen', `gen_server', `gen_statem' under this mode: a
%% GenServer's calls, casts and replies are sent and received there), the sends and receives
%% alone. Anonymous functions' bodies are not recorded as calls (their messages are).
-module(devtrace_beam_instrument).

-export([module/2, forms/3]).

-define(PROBES, devtrace_beam_tracer).

%% @doc Instruments module `Module' (loaded or on the code path): `What' is `calls' (calls and
%% messages) or `messages'. `ok', or `{error, Reason}' when it has no debug info (`erlc'
%% without `+debug_info'), was compiled in memory, its file is not written yet
%% (`not_written_yet': try again), or it does not compile.
module(Module, What) ->
    case code:which(Module) of
        [_ | _] = File ->
            with_forms(Module, File, What);
        Other ->
            {error, {no_beam_file, Other}}
    end.

with_forms(Module, File, What) ->
    case abstract_code(Module, File) of
        {ok, Forms} ->
            compile_and_load(Module, File, forms(Module, Forms, What));
        {error, _} = Error ->
            Error
    end.

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

compile_and_load(Module, File, Forms) ->
    case compile:forms(Forms, [binary, return_errors, nowarn_unused_vars]) of
        {ok, Module, Binary} -> load(Module, File, Binary);
        {ok, Module, Binary, _Warnings} -> load(Module, File, Binary);
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
    [form(Module, Form, What) || Form <- Forms].

form(Module, {function, Line, Name, Arity, Clauses}, What) ->
    Messages = [messages(Clause) || Clause <- Clauses],
    Probed = case What of
                 calls -> [probed_clause(Module, Name, Arity, C) || C <- Messages];
                 messages -> Messages
             end,
    {function, Line, Name, Arity, Probed};
form(_Module, Form, _What) ->
    Form.

%% A clause recording its call, then its return or exception:
%%   f(P1 = A1, ...) when G -> enter(M, f, [A1, ...]),
%%       try Body of R -> leave(M, f, N, R) catch C:E:S -> raised(M, f, N, C, E), erlang:raise(C, E, S) end.
probed_clause(Module, Name, Arity, {clause, L, Patterns, Guards, Body}) ->
    Args = [var(L, "Arg", I) || I <- lists:seq(1, Arity)],
    Head = [{match, L, P, A} || {P, A} <- lists:zip(Patterns, Args)],
    Id = [{atom, L, Module}, {atom, L, Name}],
    Enter = probe(L, enter, Id ++ [list(L, Args)]),
    [Result, Class, Reason, Stack] = [var(L, N, 0) || N <- ["Result", "Class", "Reason", "Stack"]],
    Leave = {clause, L, [Result], [], [probe(L, leave, Id ++ [{integer, L, Arity}, Result])]},
    Raised = {clause, L, [{tuple, L, [Class, Reason, Stack]}], [],
              [probe(L, raised, Id ++ [{integer, L, Arity}, Class, Reason]),
               remote(L, erlang, raise, [Class, Reason, Stack])]},
    {clause, L, Head, Guards, [Enter, {'try', L, Body, [Leave], [Raised], []}]}.

%% Sends and receives with their probes, anywhere in a clause's body (a pattern or a guard
%% holds neither).
messages({clause, L, Patterns, Guards, Body}) ->
    {clause, L, Patterns, Guards, expr(Body)}.

expr({op, L, '!', Dest, Message}) ->
    {op, L, '!', expr(Dest), probe(L, sent, [expr(Message)])};
expr({call, L, {remote, _, {atom, _, erlang}, {atom, _, send}} = Send, [Dest, Message | Options]}) ->
    {call, L, Send, [expr(Dest), probe(L, sent, [expr(Message)]) | expr(Options)]};
expr({'receive', L, Clauses}) ->
    {'receive', L, [received_clause(C) || C <- Clauses]};
expr({'receive', L, Clauses, Timeout, After}) ->
    {'receive', L, [received_clause(C) || C <- Clauses], expr(Timeout), expr(After)};
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
