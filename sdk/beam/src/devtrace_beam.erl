%% @doc devtrace's BEAM runtime: records an Erlang or Elixir program with no change to it.
%%
%% `devtrace run --record -- elixir script.exs' (or `erl ...', `mix ...') starts the VM with
%% this application on `ERL_LIBS' and `-s devtrace_beam start' in `ERL_AFLAGS'; `start/0' then
%% opens the recorder file named by the environment `devtrace run' set and turns tracing on:
%%
%% - calls (with `exception_trace': the return value or the exception) of the program's own
%%   modules: every module except OTP's (under `code:root_dir()'), Elixir's (elixir, eex,
%%   ex_unit, iex, logger, mix), archives under `~/.mix' and `~/.hex', and this runtime; modules
%%   loaded later are traced as they load (`trace_pattern(on_load, ...)'), and a janitor
%%   process takes the pattern off the excluded ones that load later;
%% - for every process created from now on (and the process running `-s' functions):
%%   messages sent and received, spawn, exit and registered names.
%%
%% - the state of GenServers before and after each callback (`init/1', `handle_call/3',
%%   `handle_cast/2', `handle_info/2', `handle_continue/2', `terminate/2'): of every recorded
%%   module, or of those `DEVTRACE_BEAM_STATE' names (`Cart.Server,cart_sup'; `none': none).
%%
%% The events go to `devtrace_beam_tracer' (a NIF: no tracer process). Without
%% `DEVTRACE_BEAM_DIR' in the environment `start/0' does nothing.
-module(devtrace_beam).

-export([start/0, start/1, ring_file_name/0, trace_process/1, excluded_modules/0, is_excluded_dir/1, syntax/0, state_choice/1]).

-define(DEFAULT_MIB, 64).
-define(JANITOR_INTERVAL_MS, 200).
%% A function one scheduler calls this many times within 100 ms is hot: its calls are no longer
%% traced one by one (`DEVTRACE_BEAM_HOT_CALLS'; 0: every call is). Traced, a call costs ≈ 1 µs
%% of trace delivery: 10,000 in 100 ms is a tenth of a scheduler's time.
-define(DEFAULT_HOT_CALLS, 10000).
%% How often the tracer is asked for the functions it found hot.
-define(HOT_INTERVAL_MS, 10).
%% Instrumenting: a module loaded from a directory the instrumenter has not seen yet is traced
%% (its calls recorded, its messages not) until it has instrumented it.
-define(INSTRUMENTER_INTERVAL_MS, 20).
%% The code path is looked at every millisecond (a list compared: a few microseconds), so that a
%% directory Mix adds is instrumented before the program calls its modules: a loop started in
%% their traced code stays traced (3 of 14 first runs of a Mix project's hand-written receive
%% loops, with the path looked at only every 20 ms).
-define(PATH_INTERVAL_MS, 1).
%% Modules loaded again since they were instrumented (a `recompile') are looked for every so many
%% turns (200 ms): a look reads each instrumented module's MD5 (≈ 0.6 µs a module), and
%% recompiles come at a person's pace.
-define(RELOAD_CHECK_TURNS, 10).
%% Looks for a module's file so many times (a second) before it is traced for good.
-define(TRIES, 50).
-define(FLAGS, [call, send, 'receive', procs, {tracer, devtrace_beam_tracer, []}]).
%% Instrumented: the probes record calls and messages; the flags, lifecycles (and the calls of
%% a module that could not be instrumented).
-define(INSTRUMENTED_FLAGS, [call, procs, {tracer, devtrace_beam_tracer, []}]).

%% @doc Starts recording as the environment says (`DEVTRACE_BEAM_DIR', `DEVTRACE_BEAM_MIB',
%% `DEVTRACE_BEAM_VALUES', `DEVTRACE_BEAM_LOSSLESS', `DEVTRACE_BEAM_PLAN' (a plan's file:
%% devtrace_beam_plan), `DEVTRACE_BEAM_INSTRUMENT' (`1': probes compiled in rather than trace
%% flags, devtrace_beam_instrument), `DEVTRACE_BEAM_SECONDS' (the flight
%% recorder's window, written in the file's metadata for its reader), `DEVTRACE_BEAM_STATE',
%% `DEVTRACE_BEAM_HOT_CALLS' (calls of one function within 100 ms after which it is no longer
%% traced; 0: never); does nothing without a directory.
start() ->
    case os:getenv("DEVTRACE_BEAM_DIR") of
        false ->
            ok;
        "" ->
            ok;
        Dir ->
            %% Its prep_stop/1 tells the file when the VM stops (devtrace_beam_app); started
            %% before recording, so its processes are not the program's.
            _ = (catch application:ensure_started(devtrace_beam)),
            Path = filename:join(Dir, ring_file_name()),
            start(#{path => Path,
                    mib => env_integer("DEVTRACE_BEAM_MIB", ?DEFAULT_MIB),
                    values => os:getenv("DEVTRACE_BEAM_VALUES", "1") =/= "0",
                    lossless => os:getenv("DEVTRACE_BEAM_LOSSLESS", "1") =/= "0",
                    seconds => env_integer("DEVTRACE_BEAM_SECONDS", 0),
                    plan => os:getenv("DEVTRACE_BEAM_PLAN", ""),
                    instrument => os:getenv("DEVTRACE_BEAM_INSTRUMENT", "0") =:= "1",
                    hot_calls => env_count("DEVTRACE_BEAM_HOT_CALLS", ?DEFAULT_HOT_CALLS),
                    state => state_choice(os:getenv("DEVTRACE_BEAM_STATE", "all"))})
    end.

%% @doc The recorder file's name in its directory: `devtrace-beam-OSPID.ring' (`devtrace
%% recover' looks for `devtrace-*.ring' files and reads those whose metadata says
%% `"runtime":"beam"'; docs/beam.md).
ring_file_name() ->
    "devtrace-beam-" ++ os:getpid() ++ ".ring".

%% @doc Whose GenServer state to record, from `DEVTRACE_BEAM_STATE''s text: `all' (every
%% recorded module), `none', or module names separated by commas (`Cart.Server' is Elixir's
%% `Elixir.Cart.Server', `cart_server' Erlang's).
state_choice(Text) ->
    case string:trim(Text) of
        "all" -> all;
        "" -> all;
        "none" -> none;
        "0" -> none;
        Names -> [module_atom(string:trim(N)) || N <- string:lexemes(Names, ","), string:trim(N) =/= ""]
    end.

module_atom([C | _] = Name) when C >= $A, C =< $Z -> list_to_atom("Elixir." ++ Name);
module_atom(Name) -> list_to_atom(Name).

%% @doc Starts recording into `path'. Returns `ok' or `{error, Reason}' (also printed, but for
%% `already_open': the program runs on unrecorded).
start(#{path := Path} = Options) ->
    Excluded = excluded_modules(),
    State = case maps:get(state, Options, all) of
                all -> [state];
                none -> [];
                Modules when is_list(Modules) -> [{state, Modules}]
            end,
    Flags = [F || {F, true} <- [{elixir, syntax() =:= elixir},
                                 {values, maps:get(values, Options, true)},
                                 {lossless, maps:get(lossless, Options, true)}]]
        ++ [{seconds, maps:get(seconds, Options, 0)}] ++ State,
    Mib = maps:get(mib, Options, ?DEFAULT_MIB),
    %% `devtrace run --plan': only the plan's functions (devtrace_beam_plan), each call of them.
    Plan = plan(maps:get(plan, Options, "")),
    Hot = [{hot, maps:get(hot_calls, Options, ?DEFAULT_HOT_CALLS)} || Plan =:= {ok, none}],
    try open(Plan, Path, Mib, Excluded, Flags ++ Hot) of
        ok when Plan =:= {ok, none} ->
            case maps:get(instrument, Options, false) of
                true -> instrument(Excluded);
                false -> trace_modules(Excluded), trace_processes(?FLAGS)
            end,
            ok;
        ok ->
            {ok, Planned} = Plan,
            devtrace_beam_plan:trace(Planned, {tracer, devtrace_beam_tracer, []});
        {error, already_open} ->
            %% This VM records already (`devtrace run --record' started it): nothing to say.
            {error, already_open};
        {error, Reason} ->
            report(Reason)
    catch
        error:Reason ->
            report(Reason)
    end.

plan("") -> {ok, none};
plan(PlanPath) -> devtrace_beam_plan:read(PlanPath).

%% The recorder file, given the plan's functions when there is a plan (and none when its file
%% cannot be read).
open({error, _} = NoPlan, _Path, _Mib, _Excluded, _Flags) ->
    NoPlan;
open({ok, Plan}, Path, Mib, Excluded, Flags) ->
    %% A plan without message flows follows only the processes that run its functions: the
    %% tracer keeps those it sees first for devtrace_beam_plan's watcher.
    PlanFlags = case Plan of
                    #{functions := Planned, messages := []} -> [{plan, Planned}, announce];
                    #{functions := Planned} -> [{plan, Planned}];
                    none -> []
                end,
    devtrace_beam_tracer:open(unicode:characters_to_binary(Path), Mib, Excluded, Flags ++ PlanFlags).

report(Reason) ->
    io:format(standard_error,
              "devtrace: the BEAM runtime could not start recording: ~tp~n", [Reason]),
    {error, Reason}.

%% A count from the environment, 0 allowed.
env_count(Name, Default) ->
    case catch list_to_integer(os:getenv(Name, "")) of
        N when is_integer(N), N >= 0 -> N;
        _ -> Default
    end.

env_integer(Name, Default) ->
    case catch list_to_integer(os:getenv(Name, "")) of
        N when is_integer(N), N > 0 -> N;
        _ -> Default
    end.

%% @doc `elixir' when Elixir is on the code path (`elixir', `iex', `mix' put it there; the `-s
%% elixir start_cli' they pass is not kept where `init' would tell), for summaries in Elixir's
%% syntax; `erlang' otherwise.
syntax() ->
    case code:which(elixir) of
        non_existing -> erlang;
        _ -> elixir
    end.

%% @doc Modules never recorded: the preloaded ones and those in excluded code path
%% directories (see the module doc).
excluded_modules() ->
    FromDirs = [list_to_atom(filename:basename(F, ".beam"))
                || Dir <- code:get_path(), is_excluded_dir(Dir),
                   F <- filelib:wildcard("*.beam", Dir)],
    lists:usort(erlang:pre_loaded() ++ FromDirs ++ runtime_modules()).

%% This runtime's modules, and those of its mix.exs (loaded from no directory when a Mix project
%% takes it as a dependency).
runtime_modules() ->
    [devtrace_beam, devtrace_beam_tracer, devtrace_beam_app,
     'Elixir.DevtraceBeam.MixProject', 'Elixir.Mix.Tasks.Compile.DevtraceBeam'].

%% @doc Whether the modules in code path directory `Dir' are libraries rather than the program.
is_excluded_dir(Dir) ->
    Abs = filename:absname(Dir),
    Root = filename:absname(code:root_dir()),
    Parts = filename:split(Abs),
    lists:prefix(filename:split(Root), Parts)
        orelse is_elixir_dir(Parts)
        orelse lists:member(".mix", Parts)
        orelse lists:member(".hex", Parts)
        orelse Abs =:= filename:dirname(code:which(?MODULE)).

%% An ebin of Elixir's own applications, as installed (`.../lib/elixir/ebin') — not a Mix
%% project's `_build/ENV/lib/APP/ebin'.
is_elixir_dir(Parts) ->
    case lists:reverse(Parts) of
        ["ebin", App, "lib" | Above] ->
            lists:member(App, ["elixir", "eex", "ex_unit", "iex", "logger", "mix"])
                andalso not lists:member("_build", Above);
        _ ->
            false
    end.

-define(MATCH_SPEC, [{'_', [], [{exception_trace}]}]).

%% OTP's and Elixir's modules a GenServer's, a state machine's, an event manager's or a task's
%% messages are sent and received in (Elixir's `GenServer.cast/2' sends its own; a task replies
%% from `Task.Supervised' and is awaited in `Task'): their sends and receives are instrumented
%% (not their calls) when the program's modules are.
-define(OTP_MESSAGING, [gen, gen_server, gen_statem, gen_event,
                        'Elixir.GenServer', 'Elixir.Task', 'Elixir.Task.Supervised']).

%% `DEVTRACE_BEAM_INSTRUMENT=1': the program's modules are instrumented — those on the code
%% path and loaded now, and an instrumenter process takes those of directories added to the
%% path later (a Mix project's, before the program calls them) and any loaded from elsewhere.
%% A module is traced by patterns until it is instrumented (or for good when it cannot be).
%%
%% Recording begins at once and this returns once the first modules are instrumented, so a
%% program run after it (`-s', `-eval', a Mix task) runs probed code; a program that does not
%% wait for it — `iex''s shell, started beside `-s' functions — is recorded traced meanwhile
%% (for a second or more on a first run, while the probes are compiled into the cache).
instrument(Excluded) ->
    Set = sets:from_list(Excluded),
    Self = self(),
    %% Started before processes are traced: the instrumenter is not recorded.
    {Instrumenter, Watch} = spawn_monitor(fun() -> instrumenter_start(Set, Self) end),
    catch register(devtrace_beam_instrumenter, Instrumenter),
    erlang:trace_pattern(on_load, ?MATCH_SPEC, [local]),
    trace_processes(?INSTRUMENTED_FLAGS),
    receive
        {Instrumenter, ready} ->
            demonitor(Watch, [flush]),
            ok;
        {'DOWN', Watch, process, Instrumenter, Reason} ->
            %% The program runs on, its modules loaded from now on traced (the on-load pattern).
            io:format(standard_error, "devtrace: --instrument: the instrumenter stopped (~tp): "
                      "modules loaded from now on are traced, their messages not recorded~n",
                      [Reason])
    end.

instrumenter_start(Excluded, Starter) ->
    %% Ahead of the program's processes when it wakes: a module the program calls before it is
    %% instrumented runs traced, and a loop started in that code (a local call) stays there.
    process_flag(priority, high),
    %% A Mix project's modules are loaded as the program first calls them, soon after Mix puts
    %% their directories on the path: compiled with probes now (into the cache), each is
    %% instrumented in a millisecond when its directory appears, before the program runs it.
    devtrace_beam_instrument:prepare(filelib:wildcard("_build/*/lib/*/ebin"), Excluded),
    [devtrace_beam_instrument:module(M, messages) || M <- ?OTP_MESSAGING, code:which(M) =/= non_existing],
    Handled = instrument_new(Excluded, {sets:new(), sets:new(), #{}, #{}}, false),
    Starter ! {self(), ready},
    instrumenter(Excluded, Handled, 1, code:get_path(), erlang:monotonic_time(millisecond)).

%% A turn every `INSTRUMENTER_INTERVAL_MS' (`Last': when the last began), and at once when the
%% code path changed (`Path': as the last look saw it).
instrumenter(Excluded, Handled, Turn, Path, Last) ->
    receive
    after ?PATH_INTERVAL_MS ->
        untrace_hot(),
        Now = erlang:monotonic_time(millisecond),
        case code:get_path() of
            Path when Now - Last < ?INSTRUMENTER_INTERVAL_MS ->
                instrumenter(Excluded, Handled, Turn, Path, Last);
            NewPath ->
                Reloads = Turn rem ?RELOAD_CHECK_TURNS =:= 0,
                Handled1 = instrument_new(Excluded, Handled, Reloads),
                instrumenter(Excluded, Handled1, Turn + 1, NewPath, Now)
        end
    end.

%% Instruments the program's modules not handled yet (`Handled': the modules and code path
%% directories seen), and takes the pattern off libraries' modules loaded since.
%% A module whose file is not written yet is tried again (`Waiting': tries left, by module).
%% A module loaded again since it was instrumented (`Instrumented': the MD5 of the code this
%% loaded, by module) — `iex''s `recompile', a hot code upgrade — is instrumented again when
%% `Reloads' says to look for them: its new code is traced (the on-load pattern) meanwhile.
instrument_new(Excluded, {Modules0, Dirs, Waiting, Instrumented}, Reloads) ->
    Reloaded = [M || Reloads, {M, Md5} <- maps:to_list(Instrumented), reloaded(M, Md5)],
    Modules = sets:subtract(Modules0, sets:from_list(Reloaded)),
    NewDirs = [D || D <- code:get_path(), not sets:is_element(D, Dirs)],
    OnPath = [list_to_atom(filename:basename(F, ".beam"))
              || D <- NewDirs, not is_excluded_dir(D), F <- filelib:wildcard("*.beam", D)],
    Loaded = [M || {M, _} <- code:all_loaded()],
    New = [M || M <- lists:usort(OnPath ++ Loaded), not sets:is_element(M, Modules)],
    {Libraries, Program} = lists:partition(fun(M) -> sets:is_element(M, Excluded) end, New),
    [erlang:trace_pattern({M, '_', '_'}, false, [local]) || M <- Libraries],
    Results = [{M, instrument_or_trace(M, maps:get(M, Waiting, ?TRIES))} || M <- Program],
    Unwritten = [M || {M, wait} <- Results],
    Handled = sets:union(Modules, sets:from_list(New -- Unwritten)),
    {Handled, sets:union(Dirs, sets:from_list(NewDirs)),
     maps:from_list([{M, maps:get(M, Waiting, ?TRIES) - 1} || M <- Unwritten]),
     maps:merge(maps:without(Reloaded, Instrumented), maps:from_list([{M, Md5} || {M, {ok, Md5}} <- Results]))}.

%% Whether module `Module', instrumented as code of MD5 `Md5', holds other code now (not: it
%% was deleted since).
reloaded(Module, Md5) ->
    try erlang:get_module_info(Module, md5) of
        Md5 -> false;
        _ -> true
    catch
        error:badarg -> false
    end.

%% `{ok, MD5}' of the instrumented code loaded, `wait' for a file not written yet, or `traced'.
instrument_or_trace(Module, TriesLeft) ->
    case devtrace_beam_instrument:module(Module, calls) of
        ok ->
            erlang:trace_pattern({Module, '_', '_'}, false, [local]),
            {ok, erlang:get_module_info(Module, md5)};
        {error, not_written_yet} when TriesLeft > 1 ->
            wait;
        {error, Reason} ->
            erlang:trace_pattern({Module, '_', '_'}, ?MATCH_SPEC, [local]),
            io:format(standard_error,
                      "devtrace: --instrument: ~tp ~ts: its calls are traced, its sends and "
                      "receives are not recorded~n", [Module, why_not(Reason)]),
            traced
    end.

why_not(no_debug_info) -> "has no debug info (compile it with debug_info)";
why_not({no_beam_file, _}) -> "was compiled in memory (a script's, mix.exs's or an evaluated expression's: no debug info kept)";
why_not({compile, _}) -> "could not be recompiled with probes";
why_not(not_written_yet) -> "has no file (it was loaded from memory)";
why_not(Other) -> io_lib:format("could not be instrumented (~tp)", [Other]).

trace_modules(Excluded) ->
    Set = sets:from_list(Excluded),
    [erlang:trace_pattern({M, '_', '_'}, ?MATCH_SPEC, [local])
     || {M, _} <- code:all_loaded(), not sets:is_element(M, Set)],
    erlang:trace_pattern(on_load, ?MATCH_SPEC, [local]),
    start_janitor(Set).

%% Started before processes are traced: the janitor is not recorded.
start_janitor(Excluded) ->
    Janitor = spawn(fun() -> janitor(Excluded, loaded()) end),
    catch register(devtrace_beam_janitor, Janitor),
    ok.

loaded() ->
    sets:from_list([M || {M, _} <- code:all_loaded()]).

%% Takes the trace pattern off the functions found hot (every `HOT_INTERVAL_MS'), and off
%% excluded modules loaded since the last look (every `JANITOR_INTERVAL_MS'; the NIF drops
%% their events meanwhile).
janitor(Excluded, Seen) ->
    janitor(Excluded, Seen, 1).

janitor(Excluded, Seen, Turn) ->
    receive
    after ?HOT_INTERVAL_MS ->
        untrace_hot(),
        case Turn rem (?JANITOR_INTERVAL_MS div ?HOT_INTERVAL_MS) of
            0 ->
                Now = loaded(),
                New = sets:subtract(Now, Seen),
                [erlang:trace_pattern({M, '_', '_'}, false, [local])
                 || M <- sets:to_list(New), sets:is_element(M, Excluded)],
                janitor(Excluded, Now, Turn + 1);
            _ ->
                janitor(Excluded, Seen, Turn + 1)
        end
    end.

%% A hot function's calls are no longer traced: its time is its callers' (the tracer named it
%% in the file, for the reader to say). The calls already made return traced.
untrace_hot() ->
    [erlang:trace_pattern(MFA, false, [local]) || MFA <- devtrace_beam_tracer:hot()],
    ok.

trace_processes(Flags) ->
    persistent_term:put({?MODULE, flags}, Flags),
    erlang:trace(new_processes, true, Flags),
    %% The process running `-s' functions runs the program's own `-s' next.
    catch erlang:trace(self(), true, Flags),
    ok.

%% @doc Records process `Pid' too (one that existed before recording began and runs the
%% program's code: the process running a Mix task, when the application started recording).
trace_process(Pid) ->
    catch erlang:trace(Pid, true, persistent_term:get({?MODULE, flags}, ?FLAGS)),
    ok.
