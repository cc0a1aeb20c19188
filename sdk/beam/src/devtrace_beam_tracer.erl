%% @doc devtrace's tracer module: an `erl_tracer' whose callbacks are the NIF of
%% crates/devtrace-beamrecorder (each trace event written into shared-memory rings from the
%% traced process's scheduler thread; no tracer process, no mailbox). The Erlang bodies below
%% only stand in until the NIF is loaded.
-module(devtrace_beam_tracer).

-export([enabled/3, trace/5, open/4, stats/0, summary/2, bench_write/1, initial_call/1,
         exit_told/1, seen/0, name/2, vm_stopping/0, hot/0, nif_file/0]).
%% The probes devtrace_beam_instrument compiles into a module.
-export([enter/3, leave/4, raised/5, tail/3, sent/1, sent/2, received/1]).

-on_load(load/0).

load() ->
    erlang:load_nif(nif_file(), 0).

%% @doc The NIF library, without its extension: `$DEVTRACE_BEAM_NIF' when set, else
%% `priv/devtrace_beam_nif' of this application.
nif_file() ->
    case os:getenv("DEVTRACE_BEAM_NIF") of
        false -> filename:join(priv_dir(), "devtrace_beam_nif");
        Path -> filename:rootname(Path)
    end.

priv_dir() ->
    case code:priv_dir(devtrace_beam) of
        {error, _} ->
            Ebin = filename:dirname(code:which(?MODULE)),
            filename:join(filename:dirname(Ebin), "priv");
        Dir ->
            Dir
    end.

enabled(_Tag, _State, _Tracee) -> erlang:nif_error(not_loaded).
trace(_Tag, _State, _Tracee, _Term, _Opts) -> erlang:nif_error(not_loaded).
%% @doc open(Path, SizeMiB, ExcludedModules, Flags): creates the recorder file; Flags holds
%% `elixir', `values', `lossless'.
open(_Path, _SizeMiB, _Excluded, _Flags) -> erlang:nif_error(not_loaded).
%% @doc {Events, ValuesNotKept, WriterWaits, WaitsGivenUp}.
stats() -> erlang:nif_error(not_loaded).
%% @doc The summary the tracer records for Term (Syntax: elixir | erlang), as a binary.
summary(_Term, _Syntax) -> erlang:nif_error(not_loaded).
%% @doc Nanoseconds per record of N ring writes from the calling scheduler.
bench_write(_N) -> erlang:nif_error(not_loaded).
%% @doc The initial call the tracer records for a process spawned to run {M, F, Args}:
%% {Module, Function, Arity, gen_statem | other}, or none.
initial_call(_MFA) -> erlang:nif_error(not_loaded).
%% @doc The pid whose exit Message tells of (a monitor's 'DOWN', a trapped 'EXIT'), or none.
exit_told(_Message) -> erlang:nif_error(not_loaded).
%% @doc The processes the tracer saw for the first time since the last call (when opened with
%% the `announce' flag: a plan traced by meta patterns).
seen() -> erlang:nif_error(not_loaded).
%% @doc The functions found hot since the last call, [{Module, Function, Arity}]: one
%% scheduler called each as many times within 100 ms as the `{hot, N}' flag of open/4 says.
hot() -> erlang:nif_error(not_loaded).
%% @doc Records that process Pid has the registered name Name (registered before it was traced).
name(_Pid, _Name) -> erlang:nif_error(not_loaded).
%% @doc Says in the recorder file that the VM has begun to stop (`init:stop', as SIGTERM does):
%% the processes it kills from now on were running when it stopped, not failing.
vm_stopping() -> erlang:nif_error(not_loaded).

%% @doc The probes of an instrumented module (devtrace_beam_instrument): a call of
%% Module:Function with Args, its return of Result (returned), the exception Class:Reason it
%% ended with, a message about to be sent (returned) and one a `receive' matched (returned).
enter(_Module, _Function, _Args) -> erlang:nif_error(not_loaded).
leave(_Module, _Function, _Arity, _Result) -> erlang:nif_error(not_loaded).
raised(_Module, _Function, _Arity, _Class, _Reason) -> erlang:nif_error(not_loaded).
%% @doc Its end in a tail call of another function of its module (no value of its own).
tail(_Module, _Function, _Arity) -> erlang:nif_error(not_loaded).
sent(_Message) -> erlang:nif_error(not_loaded).
%% @doc The same, told where it goes (a variable or a name: a call request's server).
sent(_Destination, _Message) -> erlang:nif_error(not_loaded).
received(_Message) -> erlang:nif_error(not_loaded).
