# devtrace plan for Elixir: reads the source with Code.string_to_quoted (parsed, never compiled
# or run) and follows calls from one function to a depth. Shipped inside devtrace's binary and
# run by `elixir`; arguments: DEPTH MODULE FUNCTION ARITY ROOT...; (MODULE is the atom's text,
# `Elixir.Shop`); answers one JSON object on stdout: functions, notes, flows, missing.
defmodule DevtracePlanCalls do
  @skip_dirs ~w(_build deps node_modules .git .elixir_ls)
  @max_files 2000

  def main([depth, module, function, arity | roots]) do
    modules =
      roots
      |> Enum.flat_map(&source_files/1)
      |> Enum.uniq()
      |> Enum.take(@max_files)
      |> read_modules()

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
      acc = Map.put(acc, name, %{file: file, aliases: defs.aliases, functions: defs.functions})
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

  defp module_name({:__aliases__, _, [:__MODULE__ | rest]}, parent, _) when parent != nil,
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

  # The functions of one module (clauses of one name/arity merged) and its aliases.
  defp definitions(items, module) do
    Enum.reduce(items, %{aliases: %{}, functions: %{}}, fn
      {:alias, _, [alias_ast | opts]}, acc ->
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

      {kind, meta, [head, body]}, acc when kind in [:def, :defp] ->
        add_clause(acc, module, meta, head, body)

      {kind, meta, [head]}, acc when kind in [:def, :defp] ->
        add_clause(acc, module, meta, head, nil)

      _, acc ->
        acc
    end)
  end

  defp add_clause(acc, _module, meta, head, body) do
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
        arity = if is_list(args), do: length(args), else: 0
        key = {Atom.to_string(name), arity}
        clause = %{line: meta[:line] || 0, bodies: [body]}

        update_in(acc.functions, fn fs ->
          Map.update(fs, key, clause, fn f -> %{f | bodies: f.bodies ++ [body]} end)
        end)

      _ ->
        acc
    end
  end

  # Breadth first from the target: each function's calls to functions of the source.
  defp follow(modules, {m, f, a} = target, depth) do
    if get_in(modules, [m, :functions, {f, a}]) == nil do
      %{functions: [], notes: [], flows: [], missing: [label(target)]}
    else
      first = entry(modules, target, 0, "the operation's function")

      walk(modules, [{target, 0}], depth, %{
        order: [target],
        entries: %{target => first},
        notes: [],
        flows: []
      })
    end
  end

  defp walk(_modules, [], _depth, state) do
    %{
      functions: Enum.map(state.order, &state.entries[&1]),
      notes: Enum.reverse(state.notes),
      flows: Enum.reverse(state.flows) |> Enum.uniq(),
      missing: []
    }
  end

  defp walk(modules, [{mfa, d} | queue], depth, state) do
    if d >= depth do
      walk(modules, queue, depth, state)
    else
      {calls, notes, flows} = calls_of(modules, mfa)

      state = %{
        state
        | notes: Enum.reverse(notes) ++ state.notes,
          flows: Enum.reverse(flows) ++ state.flows
      }

      {queue, state} =
        Enum.reduce(calls, {queue, state}, fn {callee, via}, {q, s} ->
          cond do
            callee == mfa ->
              {q, put_in(s.entries[mfa].recursive, true)}

            Map.has_key?(s.entries, callee) ->
              {q, s}

            true ->
              e = entry(modules, callee, d + 1, via)

              {q ++ [{callee, d + 1}],
               %{s | order: s.order ++ [callee], entries: Map.put(s.entries, callee, e)}}
          end
        end)

      walk(modules, queue, depth, state)
    end
  end

  defp entry(modules, {m, f, a}, depth, via) do
    mod = modules[m]

    %{
      module: m,
      qualname: "#{f}/#{a}",
      file: mod.file,
      line: mod.functions[{f, a}].line,
      depth: depth,
      via: via,
      recursive: false
    }
  end

  defp line_of({_callee, via}),
    do: via |> String.split(" at line ") |> List.last() |> Integer.parse() |> elem(0)

  defp line_of(%{line: line}), do: line

  defp label({m, f, a}), do: "#{display(m)}.#{fun(f)}/#{a}"

  defp fun(name), do: Macro.inspect_atom(:remote_call, String.to_atom(name))

  defp display("Elixir." <> alias), do: alias
  defp display(atom), do: inspect(String.to_atom(atom))

  # The calls of one function: {callee mfa, via} for functions of the source, notes, flows.
  defp calls_of(modules, {m, f, a} = mfa) do
    mod = modules[m]

    ctx = %{
      modules: modules,
      module: m,
      aliases: mod.aliases,
      caller: label(mfa),
      registered: registered(modules)
    }

    {_, acc} =
      mod.functions[{f, a}].bodies
      |> Enum.reject(&is_nil/1)
      |> Macro.prewalk({[], [], []}, fn node, acc -> visit(node, acc, ctx) end)

    {calls, notes, flows} = acc
    by_line = fn list -> list |> Enum.reverse() |> Enum.sort_by(&line_of/1) end
    {by_line.(calls), by_line.(notes), Enum.reverse(flows)}
  end

  # Names processes register under (`name: X` given to GenServer.start_link/start of the module).
  defp registered(modules) do
    Enum.reduce(modules, %{}, fn {m, mod}, acc ->
      mod.functions
      |> Map.values()
      |> Enum.flat_map(& &1.bodies)
      |> Enum.reject(&is_nil/1)
      |> Enum.reduce(acc, fn body, acc2 ->
        {_, found} =
          Macro.prewalk(body, acc2, fn
            {{:., _, [{:__aliases__, _, [:GenServer]}, start]}, _, [server, _arg, opts]} = node, a
            when start in [:start_link, :start] and is_list(opts) ->
              same = server == {:__MODULE__, [], nil} or match?({:__MODULE__, _, _}, server)

              case {same, Keyword.get(opts, :name)} do
                {true, name} when is_atom(name) and name != nil ->
                  {node, Map.put(a, Atom.to_string(name), m)}

                {true, {:__MODULE__, _, _}} ->
                  {node, Map.put(a, m, m)}

                _ ->
                  {node, a}
              end

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
       do: {node, remote(acc, ctx, meta, mod_ast, name, length(args), "#{spawn} ")}

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
       do: {node, remote(acc, ctx, meta, mod_ast, name, length(args), "")}

  defp visit({name, meta, args} = node, acc, ctx) when is_atom(name) and is_list(args),
    do: {node, local(acc, ctx, meta, name, length(args), "")}

  defp visit(node, acc, _ctx), do: {node, acc}

  defp visit_remote({{:., meta, [mod_ast, name]}, _, args} = node, acc, ctx) when is_atom(name),
    do: {node, remote(acc, ctx, meta, mod_ast, name, length(args), "")}

  defp visit_remote(node, acc, _ctx), do: {node, acc}

  defp local({c, n, fl} = acc, ctx, meta, name, arity, prefix) do
    key = {Atom.to_string(name), arity}

    if Map.has_key?(ctx.modules[ctx.module].functions, key) do
      via =
        "#{ctx.caller} calls #{prefix}#{fun(Atom.to_string(name))}/#{arity} at line #{meta[:line] || 0}"

      {[{{ctx.module, elem(key, 0), arity}, via} | c], n, fl}
    else
      acc
    end
  end

  defp remote({c, n, fl} = acc, ctx, meta, mod_ast, name, arity, prefix) do
    case resolve_module(mod_ast, ctx) do
      {:ok, m} ->
        key = {Atom.to_string(name), arity}

        if get_in(ctx.modules, [m, :functions, key]) do
          via =
            "#{ctx.caller} calls #{prefix}#{label({m, Atom.to_string(name), arity})} at line #{meta[:line] || 0}"

          {[{{m, elem(key, 0), arity}, via} | c], n, fl}
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

  defp resolve_module({:__MODULE__, _, ctx_atom}, ctx) when is_atom(ctx_atom),
    do: {:ok, ctx.module}

  defp resolve_module({:__aliases__, _, _} = ast, ctx) do
    case module_name(ast, nil, ctx.aliases) do
      nil -> :none
      m -> {:ok, m}
    end
  end

  defp resolve_module(atom, _ctx) when is_atom(atom), do: {:ok, Atom.to_string(atom)}

  defp resolve_module({name, _, ctx_atom}, _ctx) when is_atom(name) and is_atom(ctx_atom),
    do: :dynamic

  defp resolve_module(_, _), do: :none

  # A message to a process: to the server module's handler when the target names it.
  defp message_flow(node, {c, n, fl}, ctx, meta, target, msg, {handler, arity, word}) do
    line = meta[:line] || 0

    server =
      case target do
        {:__MODULE__, _, a} when is_atom(a) -> ctx.module
        {:__aliases__, _, _} -> module_name(target, nil, ctx.aliases)
        atom when is_atom(atom) -> ctx.registered[Atom.to_string(atom)]
        _ -> nil
      end

    server = server && Map.get(ctx.registered, server, server)
    defined = server && get_in(ctx.modules, [server, :functions, {handler, arity}])

    if defined do
      # The line the via is shown on names the handler.
      via = "#{ctx.caller} sends #{tag_text(msg)} with #{word} at line #{line}"
      flow = %{kind: flow_kind(handler), server: server, tag: tag(msg)}
      {node, {[{{server, handler, arity}, via} | c], n, [flow | fl]}}
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
