"""`devtrace record` with real shells and a real editor.

- bash, zsh and fish in tmux with the shell integration (`devtrace record shell-init`): a
  developer starts a recording, runs a failing test (pytest, three times), fixes the code,
  runs it again, adds a note and stops; the stored session has the commands with their exit
  codes, the edit with a diff that applies, the note, and a final patch that takes the start
  commit to the working tree; the retries are found by the retry-loop detector.
- Neovim (Debian's, headless) with the plugin in editors/nvim and a real language server
  (python-lsp-server): opening a file, jumping to a definition, listing references and writing
  reach the recorder with positions and the server's latency.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from harness import REPO_ROOT, clean_env

CART = "def total(prices):\n    return sum(prices) / len(prices)\n"
FIXED = "def total(prices):\n    return sum(prices) / len(prices) if prices else 0\n"
TEST_CART = (
    "from cart import total\n\n\n"
    "def test_empty_cart_totals_zero():\n    assert total([]) == 0\n\n\n"
    "def test_average():\n    assert total([2, 4]) == 3\n"
)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    repo = tmp_path / "shop"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Grace Hopper")
    git(repo, "config", "user.email", "grace@example.com")
    (repo / "cart.py").write_text(CART)
    (repo / "test_cart.py").write_text(TEST_CART)
    (repo / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "the cart")
    return repo.resolve()


class Recording:
    """The data directory of one test and the devtrace commands run on it."""

    def __init__(self, bin: Path, data: Path, repo: Path):
        self.bin, self.data, self.repo = bin, data, repo
        # What to show when a wait times out (the terminal, when a shell is driven).
        self.context = lambda: ""

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(DEVTRACE_DATA=str(self.data), **extra)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.bin), *args],
            cwd=self.repo,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"devtrace {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def status(self) -> dict:
        return json.loads(self.run("record", "status", "--json").stdout)

    def wait(self, what: str, predicate, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}: {status}\n{self.context()}")
            time.sleep(0.05)

    def counts(self, **expected: int) -> dict:
        def reached(status: dict) -> bool:
            counts = status.get("status", {})
            return all(counts.get(k) == v for k, v in expected.items())

        return self.wait(f"counts {expected}", reached)

    def stop_recorder(self) -> None:
        """Teardown: never leave a recorder behind."""
        try:
            pid = self.status().get("status", {}).get("pid")
        except Exception:  # noqa: BLE001 - teardown is best effort
            return
        if pid:
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass


@pytest.fixture
def recording(devtrace_bin: Path, tmp_path: Path, project: Path):
    rec = Recording(devtrace_bin, tmp_path / "data", project)
    yield rec
    rec.stop_recorder()


class Tmux:
    """A shell in a detached tmux session, driven with send-keys."""

    def __init__(self, name: str):
        self.name = name

    def send(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)
        subprocess.run(["tmux", "send-keys", "-t", self.name, "Enter"], check=True)

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name, "-S", "-200"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """The screen once it shows `text` (what a program printed reaches the pane a moment
        after the program's state says it started)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen or time.monotonic() > deadline:
                return screen
            time.sleep(0.05)


@pytest.fixture
def tmux():
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (scripts/test installs it: apt-get install tmux)")
    sessions: list[str] = []

    def start(argv: list[str], cwd: Path, env: dict[str, str]) -> Tmux:
        name = f"devtrace-record-{uuid.uuid4().hex[:8]}"
        env_args = [f"{k}={v}" for k, v in env.items()]
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", name, "-x", "200", "-y", "50", "-c", str(cwd),
             "env", "-i", *env_args, *argv],
            check=True,
        )
        sessions.append(name)
        return Tmux(name)

    yield start
    for name in sessions:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def shell_env(recording: Recording, home: Path) -> dict[str, str]:
    """What a developer's terminal has: devtrace and this Python (with pytest) on PATH."""
    home.mkdir(exist_ok=True)
    path = os.pathsep.join(
        [str(recording.bin.parent), str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    )
    return {
        "HOME": str(home),
        "PATH": path,
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "DEVTRACE_DATA": str(recording.data),
        "XDG_CONFIG_HOME": str(home / ".config"),
    }


def events(document: dict, kind: str) -> list[dict]:
    return [e for e in document["events"] if e["type"] == kind]


def applies_cleanly(repo: Path, commit: str, patch: str, into: Path) -> Path:
    """A clone of `repo` at `commit` with `patch` applied by git."""
    subprocess.run(["git", "clone", "-q", str(repo), str(into)], check=True)
    git(into, "checkout", "-q", commit)
    patch_file = into.parent / f"{into.name}.patch"
    patch_file.write_text(patch)
    applied = subprocess.run(
        ["git", "apply", "--binary", str(patch_file)], cwd=into, capture_output=True, text=True
    )
    assert applied.returncode == 0, f"the final patch does not apply: {applied.stderr}\n{patch}"
    return into


def test_a_developer_session_in_bash_under_tmux(recording, tmux, project, tmp_path):
    start_commit = git(project, "rev-parse", "HEAD").strip()
    home = tmp_path / "home"
    env = shell_env(recording, home)
    # The developer's ~/.bashrc has the one line the docs ask for.
    home.mkdir(exist_ok=True)
    (home / ".bashrc").write_text('HISTCONTROL=ignoreboth\neval "$(devtrace record shell-init bash)"\n')
    shell = tmux(["bash", "-i"], project, env)
    recording.context = shell.screen

    shell.send('devtrace record start --task "an empty cart must total 0" --test-command "python -m pytest -q"')
    recording.wait("the recording to start", lambda s: s.get("state") == "recording")
    for n in range(1, 4):
        shell.send("python -m pytest -q")
        recording.counts(commands=n)
    shell.send(f"sed -i 's|/ len(prices)$|/ len(prices) if prices else 0|' cart.py")
    recording.counts(commands=4, edits=1)
    assert (project / "cart.py").read_text() == FIXED
    shell.send(" echo 'a command hidden from history is not recorded'")
    shell.send("python -m pytest -q")
    recording.counts(commands=5)
    shell.send('devtrace note "an empty list divided by zero; guarded it" --tag debugging --tag fix')
    recording.counts(notes=1)
    shell.send("devtrace record stop --output ../session.json")
    recording.wait("the recording to end", lambda s: s.get("state") == "none", timeout=120)
    deadline = time.monotonic() + 10
    while not (tmp_path / "session.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    document = json.loads((tmp_path / "session.json").read_text())

    commands = events(document, "terminal_command")
    assert [(c["command_line"], c["exit_code"]) for c in commands] == [
        ("python -m pytest -q", 1),
        ("python -m pytest -q", 1),
        ("python -m pytest -q", 1),
        ("sed -i 's|/ len(prices)$|/ len(prices) if prices else 0|' cart.py", 0),
        ("python -m pytest -q", 0),
    ], shell.screen()
    assert all(c["cwd"] == str(project) and c["shell"] == "bash" for c in commands)
    assert commands[0]["cmd"] == "python" and commands[0]["args"] == ["-m", "pytest", "-q"]
    assert all(c["duration_ms"] > 0 for c in commands)

    (edit,) = events(document, "edit")
    assert edit["file_path"] == "cart.py" and edit["language"] == "python"
    assert edit["patch_unified"] == (
        "diff --git a/cart.py b/cart.py\n--- a/cart.py\n+++ b/cart.py\n@@ -1,2 +1,2 @@\n"
        " def total(prices):\n-    return sum(prices) / len(prices)\n"
        "+    return sum(prices) / len(prices) if prices else 0\n"
    )
    assert edit["range"] == {"start": {"line": 2, "col": 1}, "end": {"line": 2, "col": 1}}

    (note,) = events(document, "thought")
    assert note["raw"] == "an empty list divided by zero; guarded it"
    assert note["tags"] == ["debugging", "fix"]

    assert document["task"]["commit"] == start_commit
    assert document["task"]["description"] == "an empty cart must total 0"
    assert document["artifacts"]["test_results"]["passed"] == 2
    assert document["artifacts"]["test_results"]["failed"] == 0
    assert document["artifacts"]["test_results"]["runner"] == "pytest"
    assert "Grace" not in json.dumps(document) and "grace@example.com" not in json.dumps(document)

    checkout = applies_cleanly(project, start_commit, document["artifacts"]["final_patch"], tmp_path / "checkout")
    for name in ("cart.py", "test_cart.py", ".gitignore"):
        assert (checkout / name).read_bytes() == (project / name).read_bytes(), name
    assert git(checkout, "status", "--porcelain") == " M cart.py\n"

    listed = json.loads(recording.run("sessions", "--json").stdout)
    assert [(s["agent"], s["title"]) for s in listed] == [("developer", "an empty cart must total 0")]
    shown = json.loads(recording.run("session", "show", document["trace_id"][:8], "--json").stdout)
    kinds = [f["kind"] for f in shown["findings"]]
    assert "retry_loop" in kinds, shown["findings"]
    timeline = shown["timeline"]
    assert [e["exit_code"] for e in timeline if e["action"] == "command"] == [1, 1, 1, 0, 0]


@pytest.mark.parametrize("shell_name", ["zsh", "fish"])
def test_zsh_and_fish_record_commands_with_exit_codes(recording, tmux, project, tmp_path, shell_name):
    if shutil.which(shell_name) is None:
        pytest.fail(f"{shell_name} is not installed (scripts/test installs it: apt-get install {shell_name})")
    home = tmp_path / "home"
    env = shell_env(recording, home)
    init = tmp_path / f"init.{shell_name}"
    init.write_text(recording.run("record", "shell-init", shell_name).stdout)
    if shell_name == "zsh":
        (home / ".zshrc").write_text(f"setopt hist_ignore_space\nsource {init}\n")
        argv = ["zsh", "-i"]
    else:
        config = home / ".config" / "fish"
        config.mkdir(parents=True)
        (config / "config.fish").write_text(f"source {init}\n")
        argv = ["fish", "-i"]
    recording.run("record", "start", "--task", f"{shell_name} integration", "--no-watch")
    shell = tmux(argv, project, env)
    recording.context = shell.screen
    shell.send("python -c 'import sys; sys.exit(4)'")
    recording.counts(commands=1)
    shell.send(" echo hidden")
    shell.send('echo "quote \\" back\\\\slash" | cat')
    recording.counts(commands=2)
    out = tmp_path / "session.json"
    recording.run("record", "stop", "--output", str(out))
    commands = events(json.loads(out.read_text()), "terminal_command")
    assert [(c["command_line"], c["exit_code"], c["shell"]) for c in commands] == [
        ("python -c 'import sys; sys.exit(4)'", 4, shell_name),
        ('echo "quote \\" back\\\\slash" | cat', 0, shell_name),
    ], shell.screen()
    assert all(c["cwd"] == str(project) for c in commands)


def test_capture_mode_records_each_commands_output(recording, tmux, project, tmp_path):
    """`devtrace record --capture -- bash`: the shell runs on a terminal devtrace reads, and
    each command's output (as the terminal showed it) is recorded with the command."""
    home = tmp_path / "home"
    env = shell_env(recording, home)
    outer = tmux(["bash", "--norc", "-i"], project, env)
    recording.context = outer.screen
    outer.send("devtrace record --capture --no-watch --task 'captured' -- bash")
    recording.wait("the recording to start", lambda s: s.get("state") == "recording")
    started = outer.wait_for("  not captured:  ")
    assert (
        "                 each command's output in this shell (--capture: first and last 16 KiB, redacted)\n"
        "  not captured:  the output of commands in other shells (unless run as `devtrace record exec -- COMMAND`), ignored files\n"
    ) in started, started
    outer.send("echo to stdout; echo to stderr >&2; python -c 'import sys; sys.exit(6)'")
    recording.counts(commands=1)
    outer.send("seq 1 5000 | tail -n 2")
    recording.counts(commands=2)
    outer.send("exit")
    recording.wait("the recording to end", lambda s: s.get("state") == "none", timeout=60)
    screen = outer.screen()
    assert "to stdout\nto stderr\n" in screen.replace("\r", ""), screen
    # A marker that leaked would show its payload ("6973;C", "6973;D;…"); a bare "6973" can be
    # part of the session id printed above (it was: "969730fc").
    assert "6973;" not in screen, "the markers never reach the terminal"
    listed = json.loads(recording.run("sessions", "--json").stdout)
    shown = json.loads(recording.run("session", "show", listed[0]["trace_id"][:8], "--json").stdout)
    commands = [e for e in shown["timeline"] if e["action"] == "command"]
    assert [(c["exit_code"], c["output"]) for c in commands] == [
        (6, "to stdout\nto stderr\n"),
        (0, "4999\n5000\n"),
    ], commands


NVIM_SCRIPT = r"""
local ok, err = pcall(function()
  local devtrace = require('devtrace')
  devtrace.setup({ data = os.getenv('DEVTRACE_DATA') })
  vim.cmd('edit main.py')
  local client_id = vim.lsp.start_client({
    name = 'pylsp',
    cmd = { os.getenv('PYLSP') },
    root_dir = vim.fn.getcwd(),
  })
  vim.lsp.buf_attach_client(0, client_id)
  assert(vim.wait(30000, function()
    local client = vim.lsp.get_client_by_id(client_id)
    return client ~= nil and client.initialized
  end, 20), 'pylsp did not start')
  -- `total` in `print(total([2, 4]))` on line 3
  vim.api.nvim_win_set_cursor(0, { 3, 8 })
  vim.lsp.buf.definition()
  assert(vim.wait(30000, function() return vim.fn.expand('%:t') == 'cart.py' end, 20), 'no jump to cart.py')
  local line = vim.api.nvim_win_get_cursor(0)[1]
  assert(line == 1, 'jumped to line ' .. line)
  -- start_client does not attach new buffers by itself (lspconfig would): attach cart.py.
  vim.lsp.buf_attach_client(0, client_id)
  vim.api.nvim_win_set_cursor(0, { 1, 5 })
  vim.lsp.buf.references()
  assert(vim.wait(30000, function() return #vim.fn.getqflist() >= 2 end, 20), 'no references')
  vim.cmd('cclose')
  vim.api.nvim_buf_set_lines(0, 1, 2, false, { '    return sum(prices) / len(prices) if prices else 0' })
  vim.cmd('write')
  assert(vim.wait(10000, function()
    local stats = devtrace.stats()
    return stats.answered >= stats.sent and stats.sent >= 4
  end, 20), 'the recorder did not answer: ' .. vim.inspect(devtrace.stats()))
end)
if not ok then
  io.stderr:write('nvim test failed: ' .. tostring(err) .. '\n')
  vim.cmd('cquit 3')
end
vim.cmd('qall!')
"""


def test_neovim_plugin_sends_navigation_with_positions_and_latency(recording, project, tmp_path):
    nvim = shutil.which("nvim")
    if nvim is None:
        pytest.fail("nvim is not installed (scripts/test installs Debian's neovim)")
    pylsp = Path(sys.executable).parent / "pylsp"
    if not pylsp.exists():
        pytest.fail(f"{pylsp} not found: python-lsp-server is in tests/e2e/requirements.txt")
    (project / "main.py").write_text("from cart import total\n\nprint(total([2, 4]))\n")
    git(project, "add", "main.py")
    git(project, "commit", "-q", "-m", "main")
    recording.run("record", "start", "--task", "navigate with the language server")
    script = tmp_path / "drive.lua"
    script.write_text(NVIM_SCRIPT)
    plugin = REPO_ROOT / "editors" / "nvim"
    proc = subprocess.run(
        [nvim, "--headless", "-u", "NONE", "-i", "NONE", "--cmd", f"set rtp^={plugin}", "-c", f"luafile {script}"],
        cwd=project,
        env=recording.env(PYLSP=str(pylsp), HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state")),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, f"nvim exited {proc.returncode}:\n{proc.stderr}\n{proc.stdout}"
    out = tmp_path / "session.json"
    recording.run("record", "stop", "--output", str(out))
    document = json.loads(out.read_text())

    opened = [e["file_path"] for e in events(document, "file_opened")]
    assert opened[:2] == ["main.py", "cart.py"], opened
    assert events(document, "file_opened")[0]["language"] == "python"
    (definition,) = events(document, "go_to_definition")
    assert definition["source"] == {
        "file_path": "main.py",
        "symbol": "total",
        "range": {"start": {"line": 3, "col": 7}, "end": {"line": 3, "col": 12}},
    }
    assert definition["target"] == {"file_path": "cart.py", "line": 1, "col": 5}
    assert 0 < definition["latency_ms"] < 30000
    assert definition["editor"] == "nvim"
    (references,) = events(document, "find_references")
    assert references["source"]["symbol"] == "total"
    assert references["source"]["file_path"] == "cart.py"
    assert references["count"] >= 2
    assert {"file_path": "main.py", "line": 3, "col": 7} in references["references"]
    assert 0 < references["latency_ms"] < 30000
    edits = events(document, "edit")
    assert len(edits) == 1, "the editor's write and the watcher's report are one edit"
    assert edits[0]["editor"] == "nvim" and edits[0]["file_path"] == "cart.py"
    assert "+    return sum(prices) / len(prices) if prices else 0\n" in edits[0]["patch_unified"]
    assert document["environment"]["plugins"] == ["devtrace.nvim"]
    assert document["developer"]["ide"] == "vim"
    shown = json.loads(recording.run("session", "show", document["trace_id"][:8], "--json").stdout)
    labels = [e["label"] for e in shown["timeline"]]
    assert "go_to_definition" in labels and "find_references" in labels, labels
