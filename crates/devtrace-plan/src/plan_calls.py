"""devtrace plan: which functions does a Python function call? Read with Python's own parser.

Shipped inside the devtrace binary and run with the program's Python (`python3 -I -c` on this
text): Python's `ast` is the one parser that always agrees with the interpreter about the
syntax of the version it runs (match statements, type parameters, new string forms), so the
planner never mis-parses code the program runs. The source is parsed, never executed; only
modules of Python's standard library are imported, to tell a C function from a Python one.

Input (argv[1], JSON): {"roots": [dirs], "targets": [{"module", "qualname", "file"?}],
"depth": n}. Output (stdout, JSON): {"functions": [...], "notes": [...], "missing": [...]}.
"""

import ast
import builtins
import importlib
import inspect
import json
import os
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
            files = 0
            for root in self.roots:
                for dirpath, dirnames, filenames in os.walk(root):
                    dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in ("node_modules", "__pycache__", "venv", ".venv", "site-packages")]
                    for fname in filenames:
                        if not fname.endswith(".py") or files >= MAX_CANDIDATE_FILES:
                            continue
                        files += 1
                        rel = os.path.relpath(os.path.join(dirpath, fname), root)[:-3].split(os.sep)
                        if rel[-1] == "__init__":
                            rel = rel[:-1]
                        name = ".".join(rel)
                        mod = self.module(name, os.path.join(dirpath, fname))
                        if mod is None:
                            continue
                        for cls, methods in mod.classes.items():
                            for m in methods:
                                index.setdefault(m, []).append((name, f"{cls}.{m}"))
            self._method_index = index
        return self._method_index

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
        caller = f"{mod.name}.{qualname}"
        enclosing_class = qualname.rsplit(".", 1)[0] if "." in qualname and qualname.rsplit(".", 1)[0] in mod.classes else None
        nested = {}
        for child in ast.walk(node):
            if child is not node and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                nested[child.name] = f"{qualname}.<locals>.{child.name}"
        for call in [n for n in ast.walk(node) if isinstance(n, ast.Call)]:
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
    for target in request["targets"]:
        module, qualname = target["module"], target["qualname"]
        mod = planner.module(module, target.get("file") or None)
        if mod is None or qualname not in mod.functions:
            planner.missing.append({"module": module, "qualname": qualname, "file": target.get("file") or planner.find_file(module) or ""})
            continue
        planner.add(mod, qualname, 0, "the operation's function")
        planner.expand(mod, qualname, 0, int(request.get("depth", 2)))
    json.dump({"functions": planner.functions, "notes": planner.notes, "missing": planner.missing}, sys.stdout)


main()
