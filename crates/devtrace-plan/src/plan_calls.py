"""devtrace plan: which functions does a Python function call? Read with Python's own parser.

Shipped inside the devtrace binary and run with the program's Python (`python3 -I -c` on this
text): Python's `ast` is the one parser that always agrees with the interpreter about the
syntax of the version it runs (match statements, type parameters, new string forms), so the
planner never mis-parses code the program runs. The source is parsed, never executed; only
modules of Python's standard library are imported, to tell a C function from a Python one.

Input (argv[1], JSON): {"roots": [dirs], "targets": [{"module", "qualname", "file"?} or
{"span": name}], "depth": n}. Output (stdout, JSON): {"functions": [...], "notes": [...],
"missing": [...], "spans": [...], "dynamic": [...]}.

A {"span": name} target is a span the program starts by hand: the source under the roots is
searched for `start_as_current_span(name)` / `start_span(name)` with `name` as a string literal:
as a decorator (the function it decorates is planned), as a `with` item (the calls inside the
block are planned), or assigned (`span = tracer.start_span(name)`: the calls of the statements
after it, up to the one calling `span.end()`). Spans started with a name built at run time (an
f-string, a variable) cannot be matched: they are listed in "dynamic".
"""

import ast
import builtins
import importlib
import inspect
import json
import os
import re
import sys

MAX_CANDIDATE_FILES = 2000


class Module:
    def __init__(self, name, path):
        self.name, self.path = name, path
        with open(path, "rb") as f:
            self.tree = ast.parse(f.read(), filename=path)
        self.functions = {}  # qualname -> FunctionDef
        self.classes = {}  # class qualname -> {method names}
        self.imports = {}  # local name -> ("module", mod) | ("name", mod, attr)
        self._index(self.tree.body, "", top=True)

    def _index(self, body, prefix, top=False):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = prefix + node.name
                self.functions[qual] = node
                self._index(node.body, qual + ".<locals>.")
            elif isinstance(node, ast.ClassDef):
                qual = prefix + node.name
                self.classes[qual] = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
                self._index(node.body, qual + ".")
            elif top and isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.imports[alias.asname] = ("module", alias.name)
                    else:
                        top_name = alias.name.split(".")[0]
                        self.imports[top_name] = ("module", top_name)
            elif top and isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = self.name.split(".")
                    if not self.path.endswith("__init__.py"):
                        package = package[:-1]
                    package = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                    base = ".".join([p for p in package if p] + ([node.module] if node.module else []))
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = ("name", base, alias.name)
            elif top and isinstance(node, (ast.If, ast.Try)):
                self._index(node.body, prefix, top=True)


SPAN_STARTERS = ("start_as_current_span", "start_span")


def span_name_node(node):
    """The name argument of a call starting a span (`x.start_as_current_span(name)`,
    `start_span(name=...)`), or None when `node` is no such call."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if called not in SPAN_STARTERS:
        return None
    if node.args:
        return node.args[0]
    return next((k.value for k in node.keywords if k.arg == "name"), None)


def block_after(body, index, var):
    """The statements after body[index] (which started span `var`) up to the one ending it."""
    block = []
    for statement in body[index + 1:]:
        block.append(statement)
        ends = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "end"
                   and isinstance(n.func.value, ast.Name) and n.func.value.id == var for n in ast.walk(statement))
        if ends:
            break
    return block


class SpanSites:
    """Where a module starts the span `name`: ("decorator", function qualname, node) for a
    decorated function, ("block", enclosing function qualname or "", statements, line, text)
    for a with-block or an assigned span; calls naming a span at run time go to `dynamic`."""

    def __init__(self, mod, name):
        self.mod, self.name = mod, name
        self.found, self.dynamic = [], []
        self.visit(mod.tree, "", "")

    def match(self, call):
        node = span_name_node(call)
        if node is None:
            return False
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value == self.name
        if self.could_be(node):
            self.dynamic.append({"file": self.mod.path, "line": call.lineno, "call": ast.unparse(call)})
        return False

    def could_be(self, node):
        """Whether a name built at run time could be `self.name`: an f-string whose literal
        parts it fits (`f"item {n}"` fits "item 7", not "flush"), any other expression."""
        if not isinstance(node, ast.JoinedStr):
            return not isinstance(node, ast.Constant)
        pattern = "".join(re.escape(part.value) if isinstance(part, ast.Constant) else ".*" for part in node.values)
        return re.fullmatch(pattern, self.name, re.DOTALL) is not None

    def visit(self, node, function, prefix):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if not isinstance(body, list):
                continue
            for index, child in enumerate(body):
                if isinstance(child, ast.Assign) and len(child.targets) == 1 and isinstance(child.targets[0], ast.Name) \
                        and self.match(child.value):
                    self.found.append(("block", function, block_after(body, index, child.targets[0].id), child.lineno, ast.unparse(child.value)))
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = prefix + child.name
                if any(self.match(d) for d in child.decorator_list):
                    self.found.append(("decorator", qual, child))
                self.visit(child, qual, qual + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                self.visit(child, function, prefix + child.name + ".")
            else:
                if isinstance(child, (ast.With, ast.AsyncWith)):
                    for item in child.items:
                        if self.match(item.context_expr):
                            self.found.append(("block", function, child.body, child.lineno, ast.unparse(item.context_expr)))
                self.visit(child, function, prefix)


class Planner:
    def __init__(self, roots):
        self.roots = [os.path.abspath(r) for r in roots]
        self.modules = {}
        self.functions = []
        self.notes = []
        self.missing = []
        self.seen = set()
        self._method_index = None

    def find_file(self, module):
        parts = module.split(".")
        for root in self.roots:
            for candidate in (os.path.join(root, *parts) + ".py", os.path.join(root, *parts, "__init__.py")):
                if os.path.isfile(candidate):
                    return candidate
        return None

    def module(self, name, path=None):
        if name in self.modules:
            return self.modules[name]
        path = path or self.find_file(name)
        mod = None
        if path:
            try:
                mod = Module(name, path)
            except (OSError, SyntaxError, ValueError) as error:
                self.notes.append({"caller": name, "call": name, "line": 0, "kind": "unparsed", "reason": f"{path}: {error}"})
        self.modules[name] = mod
        return mod

    def method_index(self):
        """Every method name defined in a class under the roots: name -> [(module, qualname)]."""
        if self._method_index is None:
            index = {}
            for name, path in self.python_files():
                mod = self.module(name, path)
                if mod is None:
                    continue
                for cls, methods in mod.classes.items():
                    for m in methods:
                        index.setdefault(m, []).append((name, f"{cls}.{m}"))
            self._method_index = index
        return self._method_index

    def python_files(self):
        """(module name, path) of the Python files under the roots, at most MAX_CANDIDATE_FILES."""
        files = 0
        for root in self.roots:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in ("node_modules", "__pycache__", "venv", ".venv", "site-packages"))
                for fname in sorted(filenames):
                    if not fname.endswith(".py") or files >= MAX_CANDIDATE_FILES:
                        continue
                    files += 1
                    rel = os.path.relpath(os.path.join(dirpath, fname), root)[:-3].split(os.sep)
                    if rel[-1] == "__init__":
                        rel = rel[:-1]
                    yield ".".join(rel), os.path.join(dirpath, fname)

    def plan_span(self, name, max_depth):
        """Plans the span `name` started by hand; returns (sites found, dynamic sites)."""
        sites, dynamic = [], []
        for module_name, path in self.python_files():
            try:
                with open(path, "rb") as f:
                    if not any(s.encode() in f.read() for s in SPAN_STARTERS):
                        continue
            except OSError:
                continue
            mod = self.module(module_name, path)
            if mod is None:
                continue
            found = SpanSites(mod, name)
            dynamic += found.dynamic
            for site in found.found:
                if site[0] == "decorator":
                    qual = site[1]
                    sites.append({"file": mod.path, "line": site[2].lineno, "kind": "decorator", "function": f"{mod.name}.{qual}"})
                    self.add(mod, qual, 0, f"the function span {name!r} decorates")
                    self.expand(mod, qual, 0, max_depth)
                    continue
                _, function, body, line, text = site
                owner = f"{mod.name}.{function}" if function else mod.name
                sites.append({"file": mod.path, "line": line, "kind": "block", "function": owner})
                end = max((getattr(n, "end_lineno", line) or line) for n in body) if body else line
                self.note(owner, text, line, "block", f"span {name!r} is a block of {owner} (lines {line}-{end}), not a function: the plan records the functions called inside it")
                self.expand_body(mod, function, body, 0, max_depth, f"{owner} (span {name!r})")
        return sites, dynamic

    def external(self, module, attr):
        """A function outside the roots: C, library Python, or unknown."""
        top = module.split(".")[0]
        if top in getattr(sys, "stdlib_module_names", ()) or top in sys.builtin_module_names:
            try:
                obj = getattr(importlib.import_module(module), attr)
            except Exception:
                return ("unknown", None)
            if inspect.isbuiltin(obj) or type(obj).__name__ in ("builtin_function_or_method", "method_descriptor", "wrapper_descriptor"):
                return ("c", None)
            if inspect.isclass(obj):
                return ("c", None) if not hasattr(obj, "__dict__") or obj.__module__ == "builtins" else ("library", None)
            func = inspect.unwrap(obj) if callable(obj) else obj
            code = getattr(func, "__code__", None)
            if code is not None:
                return ("library", (func.__module__, code.co_qualname if hasattr(code, "co_qualname") else func.__qualname__))
            return ("c", None)
        return ("unknown", None)

    def add(self, mod, qualname, depth, via):
        key = (mod.name, qualname)
        if key in self.seen:
            return None
        self.seen.add(key)
        node = mod.functions.get(qualname)
        self.functions.append(
            {
                "module": mod.name,
                "qualname": qualname,
                "file": mod.path,
                "line": node.lineno if node else 0,
                "end_line": getattr(node, "end_lineno", 0) if node else 0,
                "depth": depth,
                "via": via,
                "recursive": False,
            }
        )
        return self.functions[-1]

    def note(self, caller, call, line, kind, reason):
        self.notes.append({"caller": caller, "call": call, "line": line, "kind": kind, "reason": reason})

    def expand(self, mod, qualname, depth, max_depth):
        node = mod.functions.get(qualname)
        if node is None or depth >= max_depth:
            return
        self.expand_body(mod, qualname, node.body, depth, max_depth, f"{mod.name}.{qualname}")

    def expand_body(self, mod, qualname, body, depth, max_depth, caller):
        """Plans the calls made in `body` (nodes of function `qualname`, "" for the module's
        own code): each resolved function is added one deeper and followed."""
        if depth >= max_depth:
            return
        enclosing_class = qualname.rsplit(".", 1)[0] if "." in qualname and qualname.rsplit(".", 1)[0] in mod.classes else None
        scope = mod.functions.get(qualname)
        nested = {}
        for child in ast.walk(scope) if scope is not None else ():
            if child is not scope and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                nested[child.name] = f"{qualname}.<locals>.{child.name}"
        calls = [n for root in body for n in ast.walk(root) if isinstance(n, ast.Call)]
        for call in calls:
            for target_mod, target_qual, via in self.resolve(mod, qualname, enclosing_class, nested, call, caller):
                if target_mod is None:
                    continue
                if (target_mod.name, target_qual) == (mod.name, qualname):
                    for f in self.functions:
                        if (f["module"], f["qualname"]) == (mod.name, qualname):
                            f["recursive"] = True
                    continue
                entry = self.add(target_mod, target_qual, depth + 1, via)
                if entry is not None:
                    self.expand(target_mod, target_qual, depth + 1, max_depth)

    def resolve(self, mod, qualname, enclosing_class, nested, call, caller):
        func = call.func
        text = ast.unparse(func) if hasattr(ast, "unparse") else "?"
        line = call.lineno
        via = f"{caller} calls {text}() at line {line}"
        if isinstance(func, ast.Name):
            name = func.id
            if name in nested:
                return [(mod, nested[name], via)]
            if name in mod.functions:
                return [(mod, name, via)]
            if name in mod.classes:
                init = f"{name}.__init__"
                return [(mod, init, via)] if init in mod.functions else []
            if name in mod.imports:
                return self.resolve_import(mod.imports[name], None, caller, text, line, via)
            if hasattr(builtins, name):
                self.note(caller, text, line, "c", "a built-in implemented in C: sys.monitoring sees no Python call, its time stays in the caller's own time")
                return []
            self.note(caller, text, line, "unknown", "a name bound at run time (a parameter or a local): its function is not known before the run")
            return []
        if isinstance(func, ast.Attribute):
            base = func.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls") and enclosing_class:
                qual = f"{enclosing_class}.{func.attr}"
                if qual in mod.functions:
                    return [(mod, qual, via)]
            if isinstance(base, ast.Name) and base.id in mod.imports:
                return self.resolve_import(mod.imports[base.id], func.attr, caller, text, line, via)
            if isinstance(base, ast.Name) and base.id in mod.classes:
                qual = f"{base.id}.{func.attr}"
                if qual in mod.functions:
                    return [(mod, qual, via)]
            candidates = self.method_index().get(func.attr, [])
            if candidates and len(candidates) <= 12:
                self.note(caller, text, line, "candidates", f"a method called through a variable: its class is known only at run time, so every method named {func.attr!r} in the source ({len(candidates)}) is recorded")
                return [(self.modules[m], q, via + " (candidate)") for m, q in candidates]
            self.note(caller, text, line, "unknown", "a method called through a variable, with no method of that name in the source (a library or C type's): its time stays in the caller's own time")
            return []
        self.note(caller, text, line, "unknown", "a call of a computed expression: not known before the run")
        return []

    def resolve_import(self, binding, attr, caller, text, line, via):
        if binding[0] == "module":
            module, name = binding[1], attr
            if name is None:
                return []
        else:
            module, name = binding[1], binding[2]
            if attr is not None:  # from pkg import mod; mod.func()
                sub = f"{module}.{name}"
                if self.find_file(sub):
                    module, name = sub, attr
        target = self.module(module) if self.find_file(module) else None
        if target is not None:
            if name in target.functions:
                return [(target, name, via)]
            if name in target.classes and f"{name}.__init__" in target.functions:
                return [(target, f"{name}.__init__", via)]
            sub = self.module(f"{module}.{name}") if self.find_file(f"{module}.{name}") else None
            if sub is not None and attr is not None and attr in sub.functions:
                return [(sub, attr, via)]
            self.note(caller, text, line, "unknown", f"{module}.{name} is not a function defined in {target.path}")
            return []
        kind, resolved = self.external(module, name)
        if kind == "c":
            self.note(caller, text, line, "c", f"{module}.{name} is implemented in C: sys.monitoring sees no Python call, its time stays in the caller's own time")
        elif kind == "library" and resolved is not None:
            self.note(caller, text, line, "library", f"{resolved[0]}.{resolved[1]} is in a library outside the source; the plan records it without following its calls")
            self.functions.append({"module": resolved[0], "qualname": resolved[1], "file": "", "line": 0, "end_line": 0, "depth": -1, "via": via, "recursive": False})
        else:
            self.note(caller, text, line, "unknown", f"{module}.{name} is outside the source directories: not followed")
        return []


def main():
    request = json.loads(sys.argv[1])
    planner = Planner(request["roots"])
    spans, dynamic = [], []
    for target in request["targets"]:
        if "span" in target:
            found, named_late = planner.plan_span(target["span"], int(request.get("depth", 2)))
            spans += found
            dynamic += named_late
            continue
        module, qualname = target["module"], target["qualname"]
        mod = planner.module(module, target.get("file") or None)
        if mod is None or qualname not in mod.functions:
            planner.missing.append({"module": module, "qualname": qualname, "file": target.get("file") or planner.find_file(module) or ""})
            continue
        planner.add(mod, qualname, 0, "the operation's function")
        planner.expand(mod, qualname, 0, int(request.get("depth", 2)))
    json.dump({"functions": planner.functions, "notes": planner.notes, "missing": planner.missing,
               "spans": spans, "dynamic": dynamic}, sys.stdout)


main()
