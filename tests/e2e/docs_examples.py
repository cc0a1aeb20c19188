"""The examples of README.md and docs/*.md as test material: every fenced block read out of the
documents, classified, and run as a reader would run it, in an isolated environment; output
samples compared with real output (`sample_mismatch`); MCP calls named in the text made through
the official MCP SDK (test_docs_examples.py holds the tables of what each block is and what its
text claims).

A block's kind comes from its info string and shape, never from which block it is:

- `sh`, `bash`, `shell`, `console`: a shell block, its commands run one after the other with
  bash (`set -o pipefail`; a `cd` or `export` carries on to the next), each one's exit code checked;
- `python`, `py`: a Python snippet, run with the e2e virtualenv's Python;
- no info string, the first line `$ COMMAND`: a transcript: each `$` line is run, and what it
  prints is compared with the lines under it;
- no info string, every line a `devtrace …` command: a shell block too;
- no info string otherwise: an output sample (or a file layout): compared by a check, or listed;
  one the text introduces right after a shell block that runs ("… prints:") is compared with
  what that block's commands printed;
- `elixir`, `erlang`, `javascript`/`js`: a program the reader saves, under the file name the text
  just before it names (`counter.exs`) or its first comment line names (`% pingpong.erl`), into
  the reader's directory, where the blocks after it run it;
- any other info string (json, toml, sql, lua…): a configuration or text block, not an example.

The environment (`DocEnv`, one per document, its blocks run in document order): a temporary
HOME (so `~/.config/devtrace`, the default data directory `~/.local/share/devtrace` and
`~/.claude` are fresh; DEVTRACE_DATA is not set, as on a reader's machine), `devtrace` on PATH
as target/debug/devtrace, `python`/`python3`/`pip` the e2e virtualenv's (pip with no index: an
install this module does not rewrite fails instead of downloading), a terminal 300 columns wide
(the documents show unwrapped lines), and a real `devtrace serve` on free loopback ports started
when the text says one is running (and for a Python snippet, which exports to it). What is
rewritten before a block runs, and only this:

- the documented addresses 127.0.0.1:4317/4318/4319 (and localhost:4319) become the test
  server's ports; a Python snippet gets OTEL_EXPORTER_OTLP_ENDPOINT pointing at it, since the
  SDK's default is the documented 127.0.0.1:4318;
- `/tmp/…` paths go to the test's temporary directory;
- package installs from the network: `python3 -m venv DIR` becomes a link to the e2e virtualenv,
  and `pip install PKG…` checks that every package named is installed there (the real
  OpenTelemetry SDK, the devtrace package scripts/test installs from ./sdk/python) instead of
  downloading it;
- placeholders such as `<id>`, and the example ids the PLACEHOLDERS table lists (a session id
  of the author's machine, say), become the value that table computes (a real id of the store);
  an unknown `<placeholder>` fails the block.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from harness import REPO_ROOT, CliResult, Server, clean_env, start_server, stop_server

DOCS = ("README.md", "docs/*.md")
E2E_VENV = REPO_ROOT / ".venv"
BLOCK_TIMEOUT_S = 240

SHELL_LANGS = {"sh", "bash", "shell", "console", "zsh"}
PYTHON_LANGS = {"python", "py", "python3"}
# Program languages a reader saves as a file (the extensions its name may have).
PROGRAM_EXTENSIONS = {"elixir": ("exs", "ex"), "erlang": ("erl",), "javascript": ("js", "mjs"), "js": ("js", "mjs")}
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^`\s]*)")
DOCUMENTED_PORTS = {"4317": "grpc", "4318": "http", "4319": "api"}
ADDRESS = re.compile(r"\b(127\.0\.0\.1|localhost):(4317|4318|4319)\b")
TMP_PATH = re.compile(r"(?<![\w/.~-])/tmp/")
PLACEHOLDER = re.compile(r"(?<![<\w])<([a-z][a-z ]*)>(?!>)")
SERVE_RUNNING = re.compile(r"serve`?\s+running", re.I)


@dataclass(frozen=True)
class Block:
    doc: str  # "README.md", "docs/cli.md"
    line: int  # the opening fence's line, 1-based
    lang: str  # the info string's first word, lower-case ("" when none)
    text: str  # the body, without the fence's indentation
    prose: str  # the text between the previous block and this one

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def named(self) -> str:
        """What a table's anchor is looked for in: the text, and an HTML comment naming the block on
        the line above it (`<!-- mcp-config: codex stdio -->`)."""
        above = self.prose.rstrip().rsplit("\n", 1)[-1]
        return (above + "\n" if above.startswith("<!--") else "") + self.text

    @property
    def last_paragraph(self) -> str:
        """The prose right before the block (what introduces it)."""
        return self.prose.strip().split("\n\n")[-1]

    @property
    def program_file(self) -> str | None:
        """The file name a program block is saved as: the last one with its language's extension
        the text just before it names in backticks, else the one its first comment line names."""
        extensions = "|".join(PROGRAM_EXTENSIONS.get(self.lang, ()))
        if not extensions:
            return None
        name = rf"[\w.-]+\.(?:{extensions})"
        named = re.findall(rf"`({name})`", self.last_paragraph)
        if named:
            return named[-1]
        first = re.match(rf"\s*(?:%+|#|//)\s*({name})\s*$", self.text.split("\n", 1)[0])
        return first.group(1) if first else None

    @property
    def kind(self) -> str:
        if self.lang in SHELL_LANGS:
            return "shell"
        if self.lang in PYTHON_LANGS:
            return "python"
        if self.lang in PROGRAM_EXTENSIONS:
            return "program"
        if self.lang:
            return "config"
        lines = [line for line in self.text.splitlines() if line.strip()]
        if lines and lines[0].startswith("$ "):
            return "transcript"
        if lines and all(line.startswith("devtrace ") for line in lines):
            return "shell"
        return "output"


def doc_paths() -> list[str]:
    found = []
    for pattern in DOCS:
        found += sorted(str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.glob(pattern))
    return found


def extract_blocks(doc: str) -> list[Block]:
    """Every fenced block of `doc` (relative to the repository root), in order."""
    lines = (REPO_ROOT / doc).read_text().splitlines()
    blocks, prose_start, i = [], 0, 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, lang = opening.groups()
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        body = [line[len(indent) :] if line.startswith(indent) else line.lstrip() for line in lines[i + 1 : end]]
        prose = "\n".join(lines[prose_start:i])
        blocks.append(Block(doc, i + 1, lang.lower(), "\n".join(body) + "\n", prose))
        prose_start = i = end + 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for doc in doc_paths() for block in extract_blocks(doc)]


def find_block(blocks: list[Block], doc: str, anchor: str) -> list[Block]:
    """The blocks of `doc` whose text contains `anchor` (a table entry names exactly one)."""
    return [b for b in blocks if b.doc == doc and anchor in b.named]


def says_serve_is_running(block: Block) -> bool:
    """The text assumes a running `devtrace serve`: the block uses a documented address, or the
    prose just before it says serve is running."""
    last_paragraph = block.prose.strip().split("\n\n")[-1]
    return bool(ADDRESS.search(block.text) or SERVE_RUNNING.search(last_paragraph))


def installed_distributions() -> set[str]:
    """The distributions installed in the e2e virtualenv, normalised (PEP 503)."""
    sites = list(E2E_VENV.glob("lib/python3*/site-packages"))
    names = set()
    for dist in metadata.distributions(path=[str(p) for p in sites]):
        names.add(re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower())
    return names


def local_project_name(path: Path) -> str:
    """The project name a local `pip install ./DIR` installs (its pyproject.toml)."""
    text = (path / "pyproject.toml").read_text()
    found = re.search(r'^name\s*=\s*"([^"]+)"', text, re.M)
    assert found, f"{path}/pyproject.toml names no project"
    return found.group(1)


def rewrite_install(command: str, cwd: Path) -> str | None:
    """`python3 -m venv DIR` → a link to the e2e virtualenv; `pip install PKG…` → a check that
    every package is installed there. None when `command` installs nothing."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:  # not one whole command (a line of Python, a quote closed further on)
        return None
    if len(words) < 2:
        return None
    if len(words) >= 4 and re.fullmatch(r"(\S*/)?python3?(\.\d+)?", words[0]) and words[1:3] == ["-m", "venv"]:
        return f"ln -sfn {shlex.quote(str(E2E_VENV))} {shlex.quote(words[-1])}"
    pip = 1 if re.fullmatch(r"(\S*/)?pip3?", words[0]) else 3 if words[1:3] == ["-m", "pip"] else 0
    if pip and words[pip : pip + 1] == ["install"]:
        packages = [w for w in words[pip + 1 :] if not w.startswith("-")]
        installed = installed_distributions()
        for package in packages:
            local = (cwd / package) if package.startswith((".", "/")) else None
            name = local_project_name(local) if local else re.split(r"[<>=\[ ]", package)[0]
            normalised = re.sub(r"[-_.]+", "-", name).lower()
            assert normalised in installed, (
                f"`{command}` installs {package}, which the e2e virtualenv lacks: add it to "
                f"tests/e2e/requirements.txt (the test runs the virtualenv's packages instead of the network's)"
            )
        return f": 'rewritten by the test: {packages} are installed in .venv'"
    return None


def rewrite_installs(script: str, cwd: Path) -> str:
    out = []
    for line in script.splitlines():
        parts = [p.strip() for p in line.split("&&")]
        rewritten = [rewrite_install(p, cwd) for p in parts]
        if any(rewritten):
            line = " && ".join(r or p for r, p in zip(rewritten, parts))
        out.append(line)
    return "\n".join(out) + "\n"


@dataclass
class DocEnv:
    """One document's reader: a home, a data directory, a PATH, and a server once one runs."""

    bin: Path
    root: Path
    server: Server | None = None
    python: str = str(E2E_VENV / "bin" / "python")
    # Values the placeholders resolved to, by placeholder text, for the checks.
    resolved: dict[str, str] = field(default_factory=dict)
    # What a check leaves for the checks of later blocks (ids a sample named and the real ones).
    notes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("home", "home/.local/share/devtrace", "tmp", "bin", "reader"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        link = self.root / "bin" / "devtrace"
        if not link.exists():
            link.symlink_to(self.bin)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def data(self) -> Path:
        return self.home / ".local" / "share" / "devtrace"

    @property
    def reader(self) -> Path:
        """The reader's own directory (their program, their files)."""
        return self.root / "reader"

    def environ(self, python_dir: Path | None = None) -> dict[str, str]:
        path = [str(self.root / "bin"), str(python_dir or E2E_VENV / "bin"), os.environ.get("PATH", "")]
        env = clean_env(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_DATA_HOME=str(self.home / ".local" / "share"),
            TMPDIR=str(self.root / "tmp"),
            PATH=os.pathsep.join(path),
            NO_COLOR="1",
            PIP_NO_INDEX="1",
            # the documents' samples are unwrapped lines: a terminal wide enough for them
            COLUMNS="300",
        )
        env.pop("VIRTUAL_ENV", None)
        if self.server:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = self.server.http_endpoint
        return env

    def start_server(self) -> Server:
        if self.server is None:
            self.server = start_server(self.bin, self.data, self.root / "serve.log", env=self.environ())
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            stop_server(self.server, signal.SIGTERM)
            self.server = None

    def cli(self, *args: str) -> CliResult:
        """`devtrace ARGS` as the reader's shell runs it (for the checks)."""
        proc = subprocess.run(
            ["devtrace", *args], cwd=self.reader, env=self.environ(), capture_output=True, text=True, timeout=120
        )
        return CliResult(list(args), proc.returncode, proc.stdout, proc.stderr)

    def rewrite(self, text: str, placeholders: dict[str, Callable[[DocEnv], str]], cwd: Path) -> str:
        if self.server:
            ports = {k: getattr(self.server, v).rsplit(":", 1)[1] for k, v in DOCUMENTED_PORTS.items()}
            text = ADDRESS.sub(lambda m: f"{m.group(1)}:{ports[m.group(2)]}", text)
        text = TMP_PATH.sub(str(self.root / "tmp") + "/", text)
        text = rewrite_installs(text, cwd)

        def resolve(m: re.Match) -> str:
            key = m.group(0)
            assert key in placeholders, (
                f"unknown placeholder {key}: add it to PLACEHOLDERS in test_docs_examples.py (how the test "
                f"finds the value a reader would type), or write the example with a real value"
            )
            self.resolved[key] = placeholders[key](self)
            return self.resolved[key]

        for example_id in (k for k in placeholders if not k.startswith("<")):
            if re.search(rf"\b{example_id}\b", text):
                self.resolved[example_id] = placeholders[example_id](self)
                text = re.sub(rf"\b{example_id}\b", self.resolved[example_id], text)
        return "\n".join(PLACEHOLDER.sub(resolve, line) for line in text.splitlines()) + "\n"

    def run_shell(self, script: str, cwd: Path, python_dir: Path | None = None) -> CliResult:
        proc = subprocess.run(
            ["bash", "-c", "set -o pipefail\n" + script],
            cwd=cwd,
            env=self.environ(python_dir),
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        return CliResult(["bash", "-c", "set -o pipefail\n" + script], proc.returncode, proc.stdout, proc.stderr)

    def run_python(self, source: str, python: str) -> CliResult:
        path = self.reader / "snippet.py"
        path.write_text(source)
        proc = subprocess.run(
            [python, str(path)],
            cwd=self.reader,
            env=self.environ(Path(python).parent),
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        return CliResult([python, str(path)], proc.returncode, proc.stdout, proc.stderr)


def native_python() -> str:
    """A CPython 3.12+ with the devtrace package built (scripts/test's DEVTRACE_NATIVE_PYTHONS)."""
    found = [p for p in os.environ.get("DEVTRACE_NATIVE_PYTHONS", "").split(":") if p]
    if not found:
        message = "DEVTRACE_NATIVE_PYTHONS names no CPython 3.12+ with the devtrace package (scripts/test sets it)"
        if os.environ.get("CI", "") not in ("", "false"):
            pytest.fail(message)
        pytest.skip(message)
    return found[0]


BEAM_COMMAND = re.compile(r"(?:^|[\s;&|(]|--\s)(?:elixir|erl|iex|mix|erlc|escript)\s", re.M)


def uses_beam(commands: list[str]) -> bool:
    """Whether a block's commands run Erlang or Elixir (docs/beam.md)."""
    return any(BEAM_COMMAND.search(c) for c in commands)


def beam_runtime(devtrace: Path) -> Path:
    """devtrace's BEAM runtime, where `devtrace run` looks for it (`beam/` beside the binary's
    directory: scripts/build-beam builds it there, and scripts/test runs that before this test),
    with Erlang and Elixir installed."""
    lib = devtrace.resolve().parent.parent / "beam"
    missing = [tool for tool in ("erl", "elixir") if shutil.which(tool) is None]
    problem = None
    if missing:
        problem = f"{' and '.join(missing)} not installed (apt-get install elixir erlang-dev; scripts/test does)"
    elif not (lib / "devtrace_beam" / "ebin" / "devtrace_beam.beam").is_file():
        problem = f"the BEAM runtime is not built in {lib} (scripts/build-beam; scripts/test does)"
    if problem:
        if os.environ.get("CI", "") not in ("", "false"):
            pytest.fail(problem)
        pytest.skip(problem)
    return lib


HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")


def split_commands(script: str) -> list[str]:
    """The commands of a shell block as a reader types them: one per line, a line ending in `\\`
    continued, a here-document up to its delimiter, and a compound command (`for … done`, a
    quote left open) up to where bash reads it as complete. Comment and blank lines are not
    commands."""
    commands, pending, delimiter = [], [], None
    for line in script.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending.append(line)
        if delimiter is not None:
            if line.strip() == delimiter:
                delimiter = None
            else:
                continue
        elif found := HEREDOC.search(line):
            delimiter = found.group(2)
            continue
        text = "\n".join(pending)
        if text.endswith("\\"):
            continue
        syntax = subprocess.run(["bash", "-n", "-c", text], capture_output=True, text=True)
        if syntax.returncode != 0 and "end of file" in syntax.stderr:
            continue
        commands.append(text)
        pending = []
    assert not pending, f"an incomplete command at the end of the block: {pending}"
    return commands


@dataclass
class Ran:
    """One command of a block, run: its exit code and output."""

    command: str
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"`{self.command}` exited {self.returncode}\n--- stdout ---\n{self.stdout[-3000:]}\n"
            f"--- stderr ---\n{self.stderr[-3000:]}"
        )


def run_commands(
    env: DocEnv, commands: list[str], cwd: Path, rewrite: Callable[[str], str], python_dir: Path | None = None
) -> list[Ran]:
    """Runs the commands one after the other as a reader's shell would: each rewritten just before
    it runs (a placeholder is resolved from what the commands before it stored), and a `cd` or an
    `export` carried on to the next one (bash saves its directory and exported variables after
    each command, and the next one starts from them)."""
    state = env.root / "shell-state.sh"
    state.write_text(f"cd {shlex.quote(str(cwd))}\n")
    ran = []
    for command in commands:
        script = f"source {shlex.quote(str(state))}\n{rewrite(command)}\n"
        script += f"__status=$?; {{ export -p; echo cd \"$(printf '%q' \"$PWD\")\"; }} > {shlex.quote(str(state))}; exit $__status\n"
        result = env.run_shell(script, cwd, python_dir)
        ran.append(Ran(command, result.returncode, result.stdout, result.stderr))
    return ran


# An output sample compared with real output: line for line, in order, where in a sample line a
# number stands for any number, a hex id for any id of its length, a date/time for any, `…` for any
# text, a run of spaces for any run (columns align to their contents), /home/NAME for the reader's
# home, a relative path (taskplan/planner.py) for itself under any directory; a line that is only
# `…` (or starts with `… (`) stands for any number of lines. An excerpt may also start and end
# anywhere in the output; a whole output (a transcript's) may not.
TOKEN = re.compile(
    r"(?P<ellipsis>…)"
    r"|(?P<time>\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d:\d\d(?:\.\d+)?Z?)?)"
    r"|(?P<path>\b[\w.-]+(?:/[\w.-]+)+\.(?:py|rs|js|ts|toml|json|md)\b)"
    r"|(?P<hex>\b(?=[0-9a-f]*\d)[0-9a-f]{8,32}\b)"
    r"|(?P<number>\d+(?:[.,]\d+)*)"
    r"|(?P<spaces>  +)"
    r"|(?P<home>/home/[a-z]+)"
)


def line_pattern(line: str, home: str) -> re.Pattern:
    out, pos = [], 0
    for m in TOKEN.finditer(line):
        out.append(re.escape(line[pos : m.start()]))
        kind = m.lastgroup
        out.append(
            {
                "ellipsis": ".*",
                "time": r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d:\d\d(?:\.\d+)?Z?)?",
                "path": r"(?:\S*/)?" + re.escape(m.group()),
                "hex": f"[0-9a-f]{{{len(m.group())}}}",
                "number": r"\d+(?:[.,]\d+)*",
                "spaces": " +",
                "home": re.escape(home),
            }[kind]
        )
        pos = m.end()
    out.append(re.escape(line[pos:]))
    return re.compile("".join(out).rstrip() + r"\s*")


def sample_mismatch(sample: str, actual: str, home: str, excerpt: bool = False) -> str | None:
    """None when `actual` fits `sample` (the rule above), else where it does not."""
    want = [line for line in sample.rstrip("\n").splitlines()]
    have = actual.rstrip("\n").splitlines()
    j = 0
    skipping = excerpt
    for i, line in enumerate(want):
        if line.strip() == "…" or line.startswith("… ("):
            skipping = True
            continue
        pattern = line_pattern(line, home)
        while skipping and j < len(have) and not pattern.fullmatch(have[j]):
            j += 1
        if j >= len(have) or not pattern.fullmatch(have[j]):
            got = have[j] if j < len(have) else "(the end of the output)"
            return f"sample line {i + 1} {line!r}\n  does not fit output line {j + 1}: {got!r}\n--- output ---\n{actual[-4000:]}"
        j += 1
        skipping = False
    if j < len(have) and not skipping and not excerpt:
        return f"the output goes on after the sample's last line: {have[j]!r}\n--- output ---\n{actual[-4000:]}"
    return None


def ids_in_place(sample: str, actual: str) -> dict[str, str]:
    """The ids a sample shows (hex, 8 to 32 characters) → the ids the real output has in their
    places, line by line, with their 8-character prefixes (what later commands and calls type)."""
    ids = {}
    hexes = re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{8,32}\b")
    for want, have in zip(sample.splitlines(), actual.splitlines()):
        for theirs, ours in zip(hexes.findall(want), hexes.findall(have)):
            ids[theirs] = ours
            ids[theirs[:8]] = ours[:8]
    return ids


MCP_CALL = re.compile(r"`(\w+\(.*?\))`")


def mcp_call(text: str, ids: dict[str, str]) -> tuple[str, dict]:
    """`tool(key="value", n=20)` as (tool, arguments); ids an earlier sample showed are the ones
    the real answer showed in their place."""
    call = ast.parse(text, mode="eval").body
    arguments = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    for key, value in arguments.items():
        if isinstance(value, str):
            for theirs, ours in ids.items():
                value = value.replace(theirs, ours)
            arguments[key] = value
    return call.func.id, arguments


def mcp_answers(env: DocEnv, data: Path, calls: list[tuple[str, dict]]) -> list[str]:
    """The text answers of `devtrace mcp` on `data` to the calls, through the official MCP SDK."""

    async def ask():
        params = StdioServerParameters(command="devtrace", args=["--data", str(data), "mcp"], env=env.environ())
        async with Client(params, read_timeout_seconds=60) as client:
            answers = []
            for tool, arguments in calls:
                result = await client.call_tool(tool, arguments)
                answers.append("".join(c.text for c in result.content if c.type == "text"))
            return answers

    return asyncio.run(ask())
