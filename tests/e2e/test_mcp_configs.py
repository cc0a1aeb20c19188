"""The MCP client configurations in docs/mcp.md work as written: every snippet marked
`<!-- mcp-config: CLIENT TRANSPORT -->` is read out of the document, parsed in its client's
format (JSON, or TOML for Codex), and used with the official MCP Python SDK: the command and
arguments it names are started (stdio, with `devtrace` found on PATH as a user's install would
be), or its URL is reached on a running `devtrace serve` (Streamable HTTP). Each must answer
`tools/list` with devtrace's tools."""

from __future__ import annotations

import asyncio
import json
import os
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from harness import REPO_ROOT, clean_env

MCP_DOC = REPO_ROOT / "docs" / "mcp.md"
SNIPPET = re.compile(r"<!-- mcp-config: (\S+) (stdio|http) -->\n```(json|toml)\n(.*?)```", re.S)
# Where each client keeps its servers, in the file format it reads.
SERVERS_KEY = {"claude-code": "mcpServers", "cursor": "mcpServers", "vscode": "servers", "codex": "mcp_servers"}
EXPECTED = {(client, transport) for client in SERVERS_KEY for transport in ("stdio", "http")}
# The documented address: serve's default API port.
DOCUMENTED_URL = "http://127.0.0.1:4319/mcp"
SOME_TOOLS = {"overview", "search_traces", "get_trace", "session_overview", "query_sql"}


def snippets() -> dict[tuple[str, str], dict]:
    """(client, transport) → the devtrace entry of that client's configuration."""
    found = {}
    for client, transport, language, text in SNIPPET.findall(MCP_DOC.read_text()):
        parsed = tomllib.loads(text) if language == "toml" else json.loads(text)
        assert (language == "toml") == (client == "codex"), f"{client} reads {language}?"
        assert set(parsed) == {SERVERS_KEY[client]}, f"{client} {transport}: {sorted(parsed)}"
        assert (client, transport) not in found, f"two {client} {transport} snippets"
        found[(client, transport)] = parsed[SERVERS_KEY[client]]["devtrace"]
    return found


def test_docs_have_a_config_for_every_client_and_transport():
    assert set(snippets()) == EXPECTED


async def tool_names(target) -> set[str]:
    async with Client(target, read_timeout_seconds=60) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


@pytest.mark.parametrize("client", sorted(SERVERS_KEY))
def test_a_stdio_config_starts_devtrace_mcp(client: str, devtrace_bin: Path, tmp_path: Path):
    entry = snippets()[(client, "stdio")]
    assert "url" not in entry
    if "type" in entry:
        assert entry["type"] == "stdio"
    # devtrace as installed: on PATH; its default data directory inside the test's own.
    env = clean_env(
        PATH=f"{devtrace_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        XDG_DATA_HOME=str(tmp_path),
    )
    names = asyncio.run(tool_names(StdioServerParameters(command=entry["command"], args=entry["args"], env=env)))
    assert SOME_TOOLS <= names, names
    assert (tmp_path / "devtrace").is_dir(), "devtrace mcp did not use its default data directory"


@pytest.mark.parametrize("client", sorted(SERVERS_KEY))
def test_an_http_config_reaches_serve(client: str, server):
    entry = snippets()[(client, "http")]
    assert "command" not in entry
    if "type" in entry:
        assert entry["type"] == "http"
    assert entry["url"] == DOCUMENTED_URL
    # The same URL on the port this test's server was given (4319 may be taken here).
    documented = urlsplit(entry["url"])
    url = documented._replace(netloc=server.api).geturl()
    assert urlsplit(url).path == "/mcp" and server.api.startswith("127.0.0.1:")
    names = asyncio.run(tool_names(url))
    assert SOME_TOOLS <= names, names
