# devtrace plan for Elixir: reads the source with Code.string_to_quoted (parsed, never compiled
# or run) and follows calls from one function to a depth. Shipped inside devtrace's binary and
# run by `elixir`; arguments: DEPTH MODULE FUNCTION ARITY ROOT...; (MODULE is the atom's text,
# `Elixir.Shop`); answers one JSON object on stdout: functions, notes, flows, missing.
# Besides `def`s it reads what compiles to functions: `defdelegate` (a function calling its
# target), default arguments (the lower arities calling the full one), and the `def`s a
# `use`d module of the source injects from its `__using__` quote (`unquote` of the `use`'s
# literal options filled in). A module or server passed as an argument is bound to what the
# caller passes as written (a module, `__MODULE__`, `@attribute`, a registered name), through
# at most @max_bindings argument sets a function.
defmodule DevtracePlanCalls do
  @skip_dirs ~w(_build deps node_modules .git .elixir_ls)
  @max_files 2000
  @max_bindings 4

  def main([depth, module, function, arity | roots]) do
    modules =
      roots
      |> Enum.flat_map(&source_files/1)
      |> Enum.uniq()
      |> Enum.take(@max_files)
      |> read_modules()
      |> inject_used()

    target = {module, function, String.to_integer(arity)}
    result = follow(modules, target, String.to_integer(depth))
    IO.write(json(result))
  end

  defp source_files(root) do
    cond do
      File.regular?(root) ->
        [root]

      File.dir?(root) ->
        case File.ls(root) do
          {:ok, names} ->
            names
            |> Enum.sort()
            |> Enum.reject(&(&1 in @skip_dirs or String.starts_with?(&1, ".")))
            |> Enum.flat_map(fn name ->
              path = Path.join(root, name)

              cond do
                File.dir?(path) -> source_files(path)
                String.ends_with?(name, [".ex", ".exs"]) -> [path]
                true -> []
              end
            end)

          _ ->
            []
        end

      true ->
        []
    end
  end

  # %{module => %{file, functions: %{{name, arity} => %{line, calls}}, registered: [name]}}
  defp read_modules(files) do
    Enum.reduce(files, %{}, fn file, acc ->
      with {:ok, text} <- File.read(file),
           {:ok, ast} <- Code.string_to_quoted(text, file: file) do
        collect_modules(ast, nil, file, acc)
      else
        _ -> acc
      end
    end)
  end

  defp collect_modules({:defmodule, _, [name_ast, [do: body]]}, parent, file, acc) do
    name = module_name(name_ast, parent, %{})

    if name do
      defs = body |> block() |> definitions(name)
      acc = Map.put(acc, name, Map.put(defs, :file, file))
      Enum.reduce(block(body), acc, &collect_modules(&1, name, file, &2))
    else
      acc
    end
  end

  defp collect_modules({:__block__, _, items}, parent, file, acc),
    do: Enum.reduce(items, acc, &collect_modules(&1, parent, file, &2))

  defp collect_modules(_, _, _, acc), do: acc

  defp block({:__block__, _, items}), do: items
  defp block(item), do: [item]

  defp module_name({:__aliases__, _, [{:__MODULE__, _, ctx} | rest]}, parent, _)
       when parent != nil and is_atom(ctx),
       do: Enum.join([parent | Enum.map(rest, &Atom.to_string/1)], ".")

  defp module_name({:__aliases__, _, parts}, parent, aliases) when is_list(parts) do
    if Enum.all?(parts, &is_atom/1) do
      [first | rest] = Enum.map(parts, &Atom.to_string/1)

      cond do
        Map.has_key?(aliases, first) -> Enum.join([aliases[first] | rest], ".")
        parent != nil and aliases == %{} -> Enum.join([parent, first | rest], ".")
        true -> Enum.join(["Elixir", first | rest], ".")
      end
    end
  end

  defp module_name(atom, _, _) when is_atom(atom) and atom not in [nil, true, false],
    do: Atom.to_string(atom)

  defp module_name(_, _, _), do: nil

  # The functions of one module (clauses of one name/arity merged), its aliases, module
  # attributes naming a module, the modules it `use`s and its `__using__` macro.
  defp definitions(items, module, aliases \\ %{}) do
    empty = %{
      aliases: aliases,
      attributes: %{},
      functions: %{},
      uses: [],
      using: nil,
      unnamed: []
    }

    Enum.reduce(items, empty, &definition(&1, &2, module))
  end

  defp definition({:alias, _, [alias_ast | opts]}, acc, _module) do
    case module_name(alias_ast, nil, acc.aliases) do
      nil ->
        acc

      full ->
        short =
          case opts do
            [[as: {:__aliases__, _, [as]}]] -> Atom.to_string(as)
            _ -> full |> String.split(".") |> List.last()
          end

        put_in(acc.aliases[short], full)
    end
  end

  defp definition({:@, _, [{name, _, [value]}]}, acc, module) when is_atom(name) do
    case literal_module(value, module, acc.aliases, acc.attributes) do
      nil -> acc
      m -> put_in(acc.attributes[Atom.to_string(name)], m)
    end
  end

  defp definition({kind, meta, [head, body]}, acc, module) when kind in [:def, :defp],
    do: add_clause(acc, module, meta, head, body)

  defp definition({kind, meta, [head]}, acc, module) when kind in [:def, :defp],
    do: add_clause(acc, module, meta, head, nil)

  # `defdelegate f(a), to: M, as: :g` compiles to `def f(a), do: M.g(a)`.
  defp definition({:defdelegate, meta, [{name, m, args}, opts]}, acc, module)
       when is_atom(name) and is_list(opts) do
    case Keyword.fetch(opts, :to) do
      {:ok, to} ->
        args = if is_list(args), do: args, else: []
        as = Keyword.get(opts, :as, name)
        call_meta = [line: meta[:line], devtrace: :delegate]
        body = {{:., call_meta, [to, as]}, call_meta, Enum.map(args, &without_default/1)}
        add_clause(acc, module, meta, {name, m, args}, body)

      :error ->
        acc
    end
  end

  defp definition({:use, meta, [mod_ast | rest]}, acc, module) do
    case literal_module(mod_ast, module, acc.aliases, acc.attributes) do
      nil ->
        acc

      used ->
        opts = List.first(rest, [])
        use = %{module: used, opts: opts, line: meta[:line] || 0, aliases: acc.aliases}
        %{acc | uses: acc.uses ++ [use]}
    end
  end

  defp definition({:defmacro, _, [{:__using__, _, [param]}, [do: body]]}, acc, _module),
    do: %{acc | using: %{param: var_name(param), body: body}}

  defp definition(_, acc, _module), do: acc

  defp var_name({:\\, _, [param, _default]}), do: var_name(param)
  defp var_name({name, _, ctx}) when is_atom(name) and is_atom(ctx), do: name
  defp var_name(_), do: nil

  defp without_default({:\\, _, [arg, _default]}), do: arg
  defp without_default(arg), do: arg

  # A module as a literal names it: an alias (through the module's aliases), `__MODULE__`
  # (`__MODULE__.Sub`), an atom, a module attribute holding one; else nil.
  defp literal_module({:__MODULE__, _, ctx}, module, _, _) when is_atom(ctx), do: module

  defp literal_module({:__aliases__, _, [{:__MODULE__, _, ctx} | rest]}, module, _, _)
       when is_atom(ctx) and module != nil,
       do: Enum.join([module | Enum.map(rest, &Atom.to_string/1)], ".")

  defp literal_module({:__aliases__, _, _} = ast, _module, aliases, _),
    do: module_name(ast, nil, aliases)

  defp literal_module({:@, _, [{name, _, ctx}]}, _module, _, attributes)
       when is_atom(name) and is_atom(ctx),
       do: attributes[Atom.to_string(name)]

  defp literal_module(atom, _, _, _) when is_atom(atom) and atom not in [nil, true, false],
    do: Atom.to_string(atom)

  defp literal_module(_, _, _, _), do: nil

  defp add_clause(acc, module, meta, head, body) do
    head =
      case head do
        {:when, _, [h | _]} -> h
        h -> h
      end

    head =
      case head do
        # `def unquote(:"odd name")(…)`
        {{:unquote, _, [name]}, m, args} when is_atom(name) -> {name, m, args}
        h -> h
      end

    case head do
      {name, _, args} when is_atom(name) ->
        args = if is_list(args), do: args, else: []
        line = meta[:line] || 0
        acc = put_clause(acc, {Atom.to_string(name), length(args)}, line, args, body)
        add_defaults(acc, module, name, line, args)

      {{:unquote, _, [expr]}, _, _} ->
        # A name `use`'s options do not give: no function the plan can name.
        unnamed = %{line: meta[:line] || 0, call: "def unquote(#{Macro.to_string(expr)})"}
        %{acc | unnamed: acc.unnamed ++ [unnamed]}

      _ ->
        acc
    end
  end

  defp put_clause(acc, key, line, args, body) do
    clause = %{line: line, clauses: [{Enum.map(args, &without_default/1), body}]}

    update_in(acc.functions, fn fs ->
      Map.update(fs, key, clause, fn f -> %{f | clauses: f.clauses ++ clause.clauses} end)
    end)
  end

  # `def f(a, b \\ 1)` compiles f/1 too, calling f(a, 1): each lower arity, once, calls the
  # full one (the leftmost defaults are the first filled, as Elixir does).
  defp add_defaults(acc, _module, name, line, args) do
    required = Enum.count(args, &(not match?({:\\, _, _}, &1)))

    Enum.reduce(required..(length(args) - 1)//1, acc, fn arity, acc ->
      key = {Atom.to_string(name), arity}

      if Map.has_key?(acc.functions, key) do
        acc
      else
        {params, passed, _} =
          Enum.reduce(args, {[], [], arity - required}, fn
            {:\\, _, [_param, default]}, {ps, pass, 0} -> {ps, [default | pass], 0}
            {:\\, _, [param, _]}, {ps, pass, n} -> {[param | ps], [param | pass], n - 1}
            param, {ps, pass, n} -> {[param | ps], [param | pass], n}
          end)

        call = {name, [line: line, devtrace: :default], Enum.reverse(passed)}
        put_clause(acc, key, line, Enum.reverse(params), call)
      end
    end)
  end

  # The `def`s each `use`d module of the source injects from its `__using__` quote, as the
  # using module's own (its own definitions win); the injected code keeps the used module's
  # file and aliases.
  defp inject_used(modules) do
    Map.new(modules, fn {m, mod} ->
      {m, Enum.reduce(mod.uses, mod, &inject(&1, &2, m, modules))}
    end)
  end

  defp inject(%{module: used, opts: opts, line: line, aliases: use_aliases}, mod, m, modules) do
    case modules[used] do
      %{using: %{param: param, body: body}} = source ->
        env = using_env(block(body), %{param => opts})

        quoted =
          body
          |> quotes()
          |> Enum.flat_map(&block/1)
          |> Enum.map(&fill_unquotes(&1, env, m, use_aliases))

        defs = definitions(quoted, m, source.aliases)

        functions =
          Map.new(defs.functions, fn {key, f} ->
            {key,
             Map.merge(f, %{file: source.file, aliases: defs.aliases, injected: {used, line}})}
          end)

        unnamed = Enum.map(defs.unnamed, &Map.merge(&1, %{used: used, use_line: line}))

        %{mod | functions: Map.merge(functions, mod.functions), unnamed: mod.unnamed ++ unnamed}

      _ ->
        mod
    end
  end

  # `name = Keyword.get(opts, :key)` and the like before the quote, as far as they are read.
  defp using_env(items, env) do
    Enum.reduce(items, env, fn
      {:=, _, [{name, _, ctx}, expr]}, env when is_atom(name) and is_atom(ctx) ->
        case evaluate(expr, env) do
          {:ok, value} -> Map.put(env, name, value)
          :error -> env
        end

      _, env ->
        env
    end)
  end

  defp quotes(body) do
    {_, found} =
      Macro.prewalk(body, [], fn
        {:quote, _, [[do: q]]}, acc -> {nil, acc ++ [q]}
        {:quote, _, [_opts, [do: q]]}, acc -> {nil, acc ++ [q]}
        node, acc -> {node, acc}
      end)

    found
  end

  # Each `unquote(expr)` the `use`'s options give as written becomes that value (a module as
  # its atom, resolved where `use` was written); the others stay, noted where they are met.
  defp fill_unquotes(ast, env, module, aliases) do
    Macro.prewalk(ast, fn
      {:unquote, _, [expr]} = node ->
        case evaluate(expr, env) do
          {:ok, {:__aliases__, _, _} = alias} -> alias_atom(alias, module, aliases)
          {:ok, value} when is_atom(value) or is_binary(value) or is_number(value) -> value
          _ -> node
        end

      node ->
        node
    end)
  end

  defp alias_atom(alias, module, aliases) do
    case literal_module(alias, module, aliases, %{}) do
      nil -> alias
      m -> String.to_atom(m)
    end
  end

  defp evaluate({name, _, ctx}, env) when is_atom(name) and is_atom(ctx),
    do: Map.fetch(env, name)

  defp evaluate({{:., _, [Access, :get]}, _, [from, key]}, env), do: lookup(from, key, nil, env)

  defp evaluate({{:., _, [{:__aliases__, _, [:Keyword]}, fun]}, _, [from, key | default]}, env)
       when fun in [:get, :fetch!] do
    lookup(from, key, List.first(default), env)
  end

  defp evaluate(literal, _env)
       when is_atom(literal) or is_binary(literal) or is_number(literal),
       do: {:ok, literal}

  defp evaluate({:__aliases__, _, _} = alias, _env), do: {:ok, alias}
  defp evaluate(_, _), do: :error

  defp lookup(from, key, default, env) when is_atom(key) do
    with {:ok, list} when is_list(list) <- evaluate_list(from, env),
         true <- Keyword.keyword?(list) do
      case Keyword.fetch(list, key) do
        {:ok, value} -> evaluate(value, env)
        :error when default != nil -> evaluate(default, env)
        :error -> :error
      end
    else
      _ -> :error
    end
  end

  defp lookup(_, _, _, _), do: :error

  defp evaluate_list({name, _, ctx}, env) when is_atom(name) and is_atom(ctx),
    do: Map.fetch(env, name)

  defp evaluate_list(list, _env) when is_list(list), do: {:ok, list}
  defp evaluate_list(_, _), do: :error

  # Breadth first from the target: each function's calls to functions of the source. A
  # function is analysed once for each set of arguments its callers bind (a module or server
  # they pass as written), at most @max_bindings sets.
  defp follow(modules, {m, f, a} = target, depth) do
    if get_in(modules, [m, :functions, {f, a}]) == nil do
      %{functions: [], notes: [], flows: [], missing: [label(target)]}
    else
      first = entry(modules, target, 0, "the operation's function")

      walk(modules, [{target, 0, %{}}], depth, %{
        order: [target],
        entries: %{target => first},
        analysed: %{target => [%{}]},
        registered: registered(modules),
        noted_modules: MapSet.new(),
        notes: [],
        flows: []
      })
    end
  end

  defp walk(_modules, [], _depth, state) do
    %{
      functions: Enum.map(state.order, &state.entries[&1]),
      notes: state.notes |> Enum.reverse() |> Enum.uniq(),
      flows: Enum.reverse(state.flows) |> Enum.uniq(),
      missing: []
    }
  end

  defp walk(modules, [{_mfa, d, _bindings} | queue], depth, state) when d >= depth,
    do: walk(modules, queue, depth, state)

  defp walk(modules, [{mfa, d, bindings} | queue], depth, state) do
    {calls, notes, flows} = calls_of(modules, state.registered, mfa, bindings)
    {module_notes, state} = unnamed_notes(modules, mfa, state)

    state = %{
      state
      | notes: Enum.reverse(module_notes ++ notes) ++ state.notes,
        flows: Enum.reverse(flows) ++ state.flows
    }

    {queue, state} =
      Enum.reduce(calls, {queue, state}, fn {callee, via, callee_bindings, _line}, {q, s} ->
        key = binding_key(callee_bindings)
        seen = Map.get(s.analysed, callee, [])

        cond do
          callee == mfa and key in seen ->
            {q, put_in(s.entries[mfa].recursive, true)}

          Map.has_key?(s.entries, callee) and (key in seen or length(seen) >= @max_bindings) ->
            {q, s}

          Map.has_key?(s.entries, callee) ->
            # Known, but called with other arguments bound: read again with those.
            s = put_in(s.analysed[callee], seen ++ [key])
            {q ++ [{callee, s.entries[callee].depth, callee_bindings}], s}

          true ->
            e = entry(modules, callee, d + 1, via)

            {q ++ [{callee, d + 1, callee_bindings}],
             %{
               s
               | order: s.order ++ [callee],
                 entries: Map.put(s.entries, callee, e),
                 analysed: Map.put(s.analysed, callee, [key])
             }}
        end
      end)

    walk(modules, queue, depth, state)
  end

  defp binding_key(bindings), do: Map.new(bindings, fn {i, {value, _from}} -> {i, value} end)

  # Functions `use` injects under names its options do not give: noted once, when the plan
  # first reads a function of their module (the note is where the quote defines them).
  defp unnamed_notes(modules, {m, _, _}, state) do
    if MapSet.member?(state.noted_modules, m) do
      {[], state}
    else
      notes =
        Enum.map(modules[m].unnamed, fn u ->
          %{
            caller: display(u.used),
            call: u.call,
            line: u.line,
            kind: "unknown",
            reason:
              "a function that use #{display(u.used)} (line #{u.use_line} of #{display(m)}) injects under a name computed from its options: the plan cannot name it"
          }
        end)

      {notes, %{state | noted_modules: MapSet.put(state.noted_modules, m)}}
    end
  end

  defp entry(modules, {m, f, a}, depth, via) do
    mod = modules[m]
    function = mod.functions[{f, a}]

    %{
      module: m,
      qualname: "#{f}/#{a}",
      file: Map.get(function, :file, mod.file),
      line: function.line,
      depth: depth,
      via: via,
      recursive: false
    }
  end

  defp line_of({_callee, _via, _bindings, line}), do: line

  defp line_of(%{line: line}), do: line

  defp label({m, f, a}), do: "#{display(m)}.#{fun(f)}/#{a}"

  defp fun(name), do: Macro.inspect_atom(:remote_call, String.to_atom(name))

  defp display("Elixir." <> alias), do: alias
  defp display(atom), do: inspect(String.to_atom(atom))

  # The calls of one function, each clause with the arguments its caller binds: {callee mfa,
  # via, the callee's bound arguments} for functions of the source, notes, flows.
  defp calls_of(modules, registered, {m, f, a} = mfa, bindings) do
    mod = modules[m]
    function = mod.functions[{f, a}]

    ctx = %{
      modules: modules,
      module: m,
      aliases: Map.get(function, :aliases, mod.aliases),
      attributes: mod.attributes,
      caller: label(mfa),
      registered: registered,
      injected: Map.get(function, :injected),
      vars: %{}
    }

    acc =
      function.clauses
      |> Enum.reject(fn {_head, body} -> is_nil(body) end)
      |> Enum.reduce({[], [], []}, fn {head, body}, acc ->
        ctx = %{ctx | vars: bound_vars(head, bindings)}
        {_, acc} = Macro.prewalk(body, acc, fn node, acc -> visit(node, acc, ctx) end)
        acc
      end)

    {calls, notes, flows} = acc
    by_line = fn list -> list |> Enum.reverse() |> Enum.sort_by(&line_of/1) end
    {by_line.(calls), by_line.(notes), Enum.reverse(flows)}
  end

  # A clause's parameters named by a variable (`server`, `server = name`) with what the caller
  # binds them to.
  defp bound_vars(head, bindings) do
    head
    |> Enum.with_index()
    |> Enum.flat_map(fn {param, i} ->
      case {Map.fetch(bindings, i), param_names(param)} do
        {{:ok, value}, names} -> Enum.map(names, &{&1, value})
        _ -> []
      end
    end)
    |> Map.new()
  end

  defp param_names({name, _, ctx}) when is_atom(name) and is_atom(ctx), do: [name]
  defp param_names({:=, _, [left, right]}), do: param_names(left) ++ param_names(right)
  defp param_names(_), do: []

  # What the call's arguments bind in the callee: each argument that names a module of the
  # source or a registered process as written (a module, `__MODULE__`, `@attribute`, an atom, a
  # variable the caller has bound), with where it was passed.
  defp argument_bindings(args, ctx, line) do
    args
    |> Enum.with_index()
    |> Enum.flat_map(fn {arg, i} ->
      case argument_value(arg, ctx) do
        nil -> []
        {value, nil} -> [{i, {value, "#{ctx.caller} at line #{line}"}}]
        {value, from} -> [{i, {value, from}}]
      end
    end)
    |> Map.new()
  end

  defp argument_value({name, _, c}, ctx) when is_atom(name) and is_atom(c) do
    case ctx.vars[name] do
      nil -> nil
      {value, from} -> {value, from}
    end
  end

  # Only a module of the source or a name one registers under can matter to the callee.
  defp argument_value(ast, ctx) do
    value = literal_module(ast, ctx.module, ctx.aliases, ctx.attributes)

    if Map.has_key?(ctx.modules, value) or Map.has_key?(ctx.registered, value),
      do: {value, nil},
      else: nil
  end

  # Names processes register under (`name: X` given to GenServer.start_link/start of the module).
  defp registered(modules) do
    Enum.reduce(modules, %{}, fn {m, mod}, acc ->
      mod.functions
      |> Map.values()
      |> Enum.flat_map(fn f -> Enum.map(f.clauses, &elem(&1, 1)) end)
      |> Enum.reject(&is_nil/1)
      |> Enum.reduce(acc, fn body, acc2 ->
        {_, found} =
          Macro.prewalk(body, acc2, fn
            {{:., _, [{:__aliases__, _, [:GenServer]}, start]}, _, [server, _arg, opts]} = node, a
            when start in [:start_link, :start] and is_list(opts) ->
              same = match?({:__MODULE__, _, c} when is_atom(c), server)
              name = literal_module(Keyword.get(opts, :name), m, mod.aliases, mod.attributes)

              if same and name != nil, do: {node, Map.put(a, name, m)}, else: {node, a}

            node, a ->
              {node, a}
          end)

        found
      end)
    end)
  end

  @message_calls %{call: {"handle_call", 3, "call"}, cast: {"handle_cast", 2, "cast"}}

  # A pipe is the call on its right with the left as first argument.
  defp visit({:|>, _, [left, right]}, acc, ctx), do: visit(Macro.pipe(left, right, 0), acc, ctx)

  defp visit({:fn, meta, _} = node, {c, n, fl}, ctx) do
    note =
      note(
        ctx,
        "fn",
        meta,
        "unknown",
        "an anonymous function: compiled to a function of its own with a generated name the plan cannot name; its own time stays in its caller's, the calls it makes to the source are followed"
      )

    {node, {c, [note | n], fl}}
  end

  defp visit(
         {{:., _, [{:__aliases__, _, [:GenServer]}, kind]}, meta, [target, msg | _]} = node,
         acc,
         ctx
       )
       when kind in [:call, :cast] do
    {handler, arity, word} = @message_calls[kind]
    message_flow(node, acc, ctx, meta, target, msg, {handler, arity, "GenServer.#{word}"})
  end

  defp visit({:send, meta, [target, msg]} = node, acc, ctx),
    do: message_flow(node, acc, ctx, meta, target, msg, {"handle_info", 2, "send"})

  defp visit(
         {{:., _, [{:__aliases__, _, [:Kernel]}, :send]}, meta, [target, msg]} = node,
         acc,
         ctx
       ),
       do: message_flow(node, acc, ctx, meta, target, msg, {"handle_info", 2, "send"})

  # A new process running Mod.fun(args…): followed when the arguments are a list as written.
  defp visit({spawn, meta, [mod_ast, name, args]} = node, acc, ctx)
       when spawn in [:spawn, :spawn_link, :spawn_monitor] and is_atom(name) and is_list(args),
       do: {node, remote(acc, ctx, meta, mod_ast, name, args, "#{spawn} ")}

  defp visit({:apply, meta, args} = node, {c, n, fl}, ctx)
       when is_list(args) and length(args) in [2, 3] do
    note =
      note(
        ctx,
        "apply",
        meta,
        "unknown",
        "apply: the function is chosen at run time, the source does not say which"
      )

    {node, {c, [note | n], fl}}
  end

  defp visit({:&, _, [{:/, meta, [fun_ast, arity]}]} = node, acc, ctx) when is_integer(arity) do
    case fun_ast do
      {{:., _, [mod_ast, name]}, _, _} ->
        {node, remote(acc, ctx, meta, mod_ast, name, arity, "&")}

      {name, _, ctx_atom} when is_atom(name) and is_atom(ctx_atom) ->
        {node, local(acc, ctx, meta, name, arity, "&")}

      _ ->
        {node, acc}
    end
  end

  # `fun.(x)`: a function value.
  defp visit({{:., meta, [fun]}, _, args} = node, {c, n, fl}, ctx)
       when is_list(args) and not is_atom(fun) do
    note =
      note(
        ctx,
        Macro.to_string(fun) <> ".()",
        meta,
        "unknown",
        "a function value called: which function it holds is known only at run time"
      )

    {node, {c, [note | n], fl}}
  end

  # `map.field` is no call.
  defp visit({{:., _, [_, _]}, call_meta, []} = node, acc, ctx) when is_list(call_meta) do
    if call_meta[:no_parens], do: {node, acc}, else: visit_remote(node, acc, ctx)
  end

  defp visit({{:., meta, [mod_ast, name]}, _, args} = node, acc, ctx)
       when is_atom(name) and is_list(args),
       do: {node, remote(acc, ctx, meta, mod_ast, name, args, "")}

  defp visit({:unquote, meta, [expr]}, acc, ctx), do: {nil, unquoted(meta, expr, acc, ctx)}

  defp visit({name, meta, args} = node, acc, ctx) when is_atom(name) and is_list(args),
    do: {node, local(acc, ctx, meta, name, args, "")}

  defp visit(node, acc, _ctx), do: {node, acc}

  defp visit_remote({{:., meta, [mod_ast, name]}, _, args} = node, acc, ctx) when is_atom(name),
    do: {node, remote(acc, ctx, meta, mod_ast, name, args, "")}

  defp visit_remote(node, acc, _ctx), do: {node, acc}

  # A call to a function of the caller's module; `args` is the arity when the call passes none
  # (a capture).
  defp local({c, n, fl} = acc, ctx, meta, name, args, prefix) do
    arity = if is_list(args), do: length(args), else: args
    key = {Atom.to_string(name), arity}
    line = meta[:line] || 0

    if Map.has_key?(ctx.modules[ctx.module].functions, key) do
      text = "#{prefix}#{fun(Atom.to_string(name))}/#{arity}"

      via =
        case meta[:devtrace] do
          :default -> "#{ctx.caller} calls #{text} with its default arguments at line #{line}"
          _ -> "#{ctx.caller} calls #{text} at line #{line}"
        end

      call = {{ctx.module, elem(key, 0), arity}, via, call_bindings(args, ctx, line), line}
      {[call | c], n, fl}
    else
      acc
    end
  end

  defp call_bindings(args, ctx, line) when is_list(args), do: argument_bindings(args, ctx, line)
  defp call_bindings(_arity, _ctx, _line), do: %{}

  defp remote({c, n, fl} = acc, ctx, meta, mod_ast, name, args, prefix) do
    arity = if is_list(args), do: length(args), else: args
    line = meta[:line] || 0

    case resolve_module(mod_ast, ctx) do
      {:ok, m, bound} ->
        key = {Atom.to_string(name), arity}

        if get_in(ctx.modules, [m, :functions, key]) do
          how = if meta[:devtrace] == :delegate, do: "delegates to", else: "calls"
          target = "#{prefix}#{label({m, Atom.to_string(name), arity})}"
          via = "#{ctx.caller} #{how} #{target} at line #{line}#{bound_text(bound)}"
          {[{{m, elem(key, 0), arity}, via, call_bindings(args, ctx, line), line} | c], n, fl}
        else
          acc
        end

      :dynamic ->
        text = Macro.to_string(mod_ast) <> ".#{name}"

        note =
          note(
            ctx,
            text,
            meta,
            "unknown",
            "a call on a module held in a variable: which module is known only at run time"
          )

        {c, [note | n], fl}

      :none ->
        acc
    end
  end

  # `{:ok, module, how it is bound}`: a variable its caller binds says so (`nil` otherwise).
  defp resolve_module({name, _, c}, ctx) when is_atom(name) and is_atom(c) do
    case ctx.vars[name] do
      {m, from} -> {:ok, m, {name, m, from}}
      nil -> if name == :__MODULE__, do: {:ok, ctx.module, nil}, else: :dynamic
    end
  end

  defp resolve_module(ast, ctx) do
    case literal_module(ast, ctx.module, ctx.aliases, ctx.attributes) do
      nil -> :none
      m -> {:ok, m, nil}
    end
  end

  defp bound_text(nil), do: ""
  defp bound_text({name, value, from}), do: " (#{name}: #{display(value)}, passed by #{from})"

  # An `unquote` a `use`'s options do not fill: the code there is known only when the using
  # module compiles.
  defp unquoted(meta, expr, {c, n, fl}, ctx) do
    reason =
      case ctx.injected do
        {used, line} ->
          "code that use #{display(used)} (line #{line} of #{display(ctx.module)}) injects, computed from its options: the source does not give it as written, so the plan cannot follow it"

        nil ->
          "code the module computes when it compiles: the source does not give it as written, so the plan cannot follow it"
      end

    note = note(ctx, "unquote(#{Macro.to_string(expr)})", meta, "unknown", reason)

    {c, [note | n], fl}
  end

  # A message to a process: to the server module's handler when the target names it.
  defp message_flow(node, {c, n, fl}, ctx, meta, target, msg, {handler, arity, word}) do
    line = meta[:line] || 0
    {named, bound} = message_target(target, ctx)

    server =
      cond do
        named == nil -> nil
        Map.has_key?(ctx.registered, named) -> ctx.registered[named]
        Map.has_key?(ctx.modules, named) -> named
        true -> nil
      end

    defined = server && get_in(ctx.modules, [server, :functions, {handler, arity}])

    if defined do
      # The line the via is shown on names the handler.
      via =
        "#{ctx.caller} sends #{tag_text(msg)} with #{word} at line #{line}#{bound_text(bound)}"

      flow = %{kind: flow_kind(handler), server: server, tag: tag(msg)}
      {node, {[{{server, handler, arity}, via, %{}, line} | c], n, [flow | fl]}}
    else
      reason =
        if server,
          do:
            "the message goes to #{display(server)}, which defines no #{handler}/#{arity} in the source",
          else:
            "the receiving process is known only at run time (a pid or a name no module of the source registers under)"

      note = note(ctx, "#{word}(#{Macro.to_string(target)}, …)", meta, "unknown", reason)
      {node, {c, [note | n], fl}}
    end
  end

  # The name a message's target is (a module or a registered name), and how it is bound when
  # the caller passes it.
  defp message_target({name, _, c} = target, ctx) when is_atom(name) and is_atom(c) do
    case ctx.vars[name] do
      {value, from} -> {value, {name, value, from}}
      nil -> {literal_module(target, ctx.module, ctx.aliases, ctx.attributes), nil}
    end
  end

  defp message_target(target, ctx),
    do: {literal_module(target, ctx.module, ctx.aliases, ctx.attributes), nil}

  defp flow_kind("handle_call"), do: "call"
  defp flow_kind("handle_cast"), do: "cast"
  defp flow_kind(_), do: "info"

  defp tag(atom) when is_atom(atom), do: Atom.to_string(atom)
  defp tag({first, _}) when is_atom(first), do: Atom.to_string(first)
  defp tag({:{}, _, [first | _]}) when is_atom(first), do: Atom.to_string(first)
  defp tag(_), do: nil

  defp tag_text(msg) do
    case tag(msg) do
      nil -> "a message"
      t -> inspect(String.to_atom(t))
    end
  end

  defp note(ctx, call, meta, kind, reason),
    do: %{caller: ctx.caller, call: call, line: meta[:line] || 0, kind: kind, reason: reason}

  # JSON for the few shapes the answer holds.
  defp json(map) when is_map(map),
    do:
      "{" <> Enum.map_join(map, ",", fn {k, v} -> json(to_string(k)) <> ":" <> json(v) end) <> "}"

  defp json(list) when is_list(list), do: "[" <> Enum.map_join(list, ",", &json/1) <> "]"
  defp json(b) when is_boolean(b), do: to_string(b)
  defp json(nil), do: "null"
  defp json(n) when is_integer(n), do: Integer.to_string(n)

  defp json(s) when is_binary(s) do
    escaped =
      for <<c::utf8 <- s>>, into: "" do
        case c do
          ?" -> "\\\""
          ?\\ -> "\\\\"
          c when c < 0x20 -> "\\u" <> String.pad_leading(Integer.to_string(c, 16), 4, "0")
          c -> <<c::utf8>>
        end
      end

    "\"" <> escaped <> "\""
  end
end

DevtracePlanCalls.main(System.argv())
