%% @doc The `devtrace_beam' application: what starts recording when a Mix (or rebar3) project
%% takes devtrace's BEAM runtime as a dependency instead of running under `devtrace run'.
%%
%% The project's config says whether and how (`config :devtrace_beam, record: true, dir: ...');
%% this callback reads the application environment when the application starts — before the
%% project's own application, so its processes are recorded — and starts recording with
%% `devtrace_beam:start/1' into `devtrace-beam-OSPID.ring' in `dir' (default: the system's
%% temporary directory). No reader runs beside the VM, so the rings keep the last events
%% (flight-recorder mode, never lossless: a full ring must not stop the program) and the file
%% stays when the VM ends, for `devtrace recover' to write into the store.
%%
%% It does nothing without `record: true', and nothing when `devtrace run --record' records the
%% VM already (it set `DEVTRACE_BEAM_DIR', or the recorder is open). The application's
%% supervisor has no children: recording lives in the NIF, not in a process. When the VM
%% stops, the application tells the recorder file (`prep_stop/1').
-module(devtrace_beam_app).

-behaviour(application).
-behaviour(supervisor).

-export([start/2, prep_stop/1, stop/1, init/1, recording/2, ring_path/1]).

%% @doc Starts recording as the application environment says (see the module doc), then the
%% application's (empty) supervisor. Recording that cannot start is said on standard error by
%% `devtrace_beam:start/1'; the program runs on unrecorded.
start(_Type, _Args) ->
    case recording(application:get_all_env(devtrace_beam), os:getenv("DEVTRACE_BEAM_DIR")) of
        {record, Options} -> record(Options);
        none -> ok
    end,
    supervisor:start_link(?MODULE, []).

%% Recording follows the processes created from now on; the process running the Mix task
%% (`mix run -e 'App.main()'' runs its code in it) exists already, so it is added.
record(#{path := Path} = Options) ->
    _ = filelib:ensure_dir(Path),
    case devtrace_beam:start(Options) of
        ok -> lists:foreach(fun devtrace_beam:trace_process/1, mix_task_processes());
        {error, _} -> ok
    end.

mix_task_processes() ->
    [Pid || Pid <- processes(), Pid =/= self(), runs_mix_task(Pid)].

%% Whether Mix's command line (which runs the task) is on the process's stack: its whole
%% stack, as `current_stacktrace' stops at `backtrace_depth' frames.
runs_mix_task(Pid) ->
    case erlang:process_info(Pid, backtrace) of
        {backtrace, Text} -> binary:match(Text, <<"('Elixir.Mix.CLI':">>) =/= nomatch;
        undefined -> false
    end.

%% The VM stopping (`init:stop', as SIGTERM or `System.stop/0' does) stops the applications
%% in the reverse of their start order — this one after the program's — then kills every
%% process left. The recorder file is told when, so those processes read as stopped with the
%% VM, not as failed (`devtrace_beam:start/0' starts this application for that).
prep_stop(State) ->
    case init:get_status() of
        {stopping, _} -> catch devtrace_beam_tracer:vm_stopping();
        _ -> ok
    end,
    State.

stop(_State) ->
    ok.

init([]) ->
    {ok, {#{strategy => one_for_one}, []}}.

%% @doc What to do from the application environment `Env' (a proplist) and the value of
%% `DEVTRACE_BEAM_DIR' (`false' when unset): `none', or `{record, Options}' for
%% `devtrace_beam:start/1'. Keys: `record' (true to record), `dir', `mib' (the file's size),
%% `values' (false: no summaries of arguments, results and state), `state' (`all', `none', or a
%% list of modules), `seconds' (a whole number: the window `devtrace recover' reads, the last
%% seconds of what the file holds; default: all of it).
recording(Env, RunDir) when RunDir =:= false; RunDir =:= "" ->
    case proplists:get_value(record, Env, false) of
        true -> {record, options(Env)};
        _ -> none
    end;
recording(_Env, _RunDir) ->
    %% `devtrace run --record' records this VM (its `-s devtrace_beam start' opened the file).
    none.

options(Env) ->
    Dir = proplists:get_value(dir, Env, default_dir()),
    Given = maps:from_list([{Key, Value} || {Key, Value} <- Env,
                                            lists:member(Key, [mib, values, state, seconds])]),
    Given#{path => ring_path(Dir), lossless => false}.

%% @doc The ring file of this VM in directory `Dir': `devtrace-beam-OSPID.ring', the name
%% `devtrace recover' looks for.
ring_path(Dir) ->
    filename:join(text(Dir), devtrace_beam:ring_file_name()).

text(Dir) when is_binary(Dir) -> unicode:characters_to_list(Dir);
text(Dir) when is_atom(Dir) -> atom_to_list(Dir);
text(Dir) -> Dir.

%% The system's temporary directory as `devtrace recover' reads it (Rust's `temp_dir()'):
%% `$TMPDIR', else `/tmp'.
default_dir() ->
    case os:getenv("TMPDIR") of
        false -> "/tmp";
        "" -> "/tmp";
        Dir -> Dir
    end.
