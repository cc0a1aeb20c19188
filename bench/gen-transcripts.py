#!/usr/bin/env python3
"""Synthetic Claude Code transcripts for the session-import benchmark.

Writes FILES transcripts totalling about TOTAL_MB megabytes into OUT (one project directory
per 50 sessions), shaped like real ones (the third-party transcripts under $DEVTRACE_EXTERNAL_FIXTURES/claude-code): prompts, responses
split over several streamed lines that repeat their usage, tool calls (Bash, Read, Edit, Write,
Grep, Task with a sub-agent on sidechain lines) and their results with `toolUseResult` beside
them (file contents before an edit, what was read), failures, long outputs, a few secrets for
the redaction to find, some non-ASCII text. Deterministic for a given seed. Every file is
different (content carries its session and line), so nothing deduplicates unrealistically.

Usage: bench/gen-transcripts.py OUT [--files 1000] [--total-mb 1000] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

WORDS = (
    "the cart total order item price quantity user session token cache request response "
    "build test module function return value error config path file line number parse render "
    "async await client server handler route query index schema migration deploy branch commit"
).split()

CODE = [
    "fn {w}_{n}(input: &str) -> Result<{W}, Error> {{",
    "    let {w} = parse_{w}(input).context(\"parsing {w}\")?;",
    "    if {w}.len() > {n} {{ return Err(Error::TooLong({n})); }}",
    "def {w}_{n}(self, {w}: str) -> dict:",
    "        return {{\"{w}\": {w}, \"count\": {n}}}",
    "export function {w}{N}({w}: number): number {{ return {w} * {n}; }}",
    "import {{ {W} }} from './{w}/{w}{n}';",
    "// {w} {w} {w}: keep {n} entries at most",
    "SELECT {w}, count(*) FROM {w}s WHERE id = {n} GROUP BY {w};",
    "    assert_eq!({w}_{n}(\"{w}\"), Ok({n}));",
]

LOG = [
    "{ts} INFO  {w}: handled request {n} in {n}ms",
    "{ts} WARN  {w}: retrying {w} after {n}ms (attempt {n})",
    "   Compiling {w}-{w} v0.{n}.0",
    "test {w}::{w}_{n} ... ok",
    "test {w}::{w}_{n} ... FAILED",
    "npm warn Unknown env config \"{w}-{w}\"",
    "  ✓ {w} {w} ({n} ms)",
    "error[E0{n}]: mismatched types in `{w}_{n}` — expected `{W}`",
    "ファイル {w}.rs の {n} 行目を確認しました",
]

SECRETS = [
    "export GITHUB_TOKEN=ghp_{r36}",
    "DATABASE_URL=postgres://app:{r12}@db.internal:5432/orders",
    "Authorization: Bearer {r40}",
    "contact: dev.{r6}@example.com",
]


def fill(template: str, rng: random.Random, tag: str) -> str:
    w = rng.choice(WORDS)
    alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return template.format(
        w=w,
        W=w.capitalize(),
        N=rng.randrange(100),
        n=rng.randrange(10_000),
        ts=tag,
        r36="".join(rng.choice(alnum) for _ in range(36)),
        r12="".join(rng.choice(alnum) for _ in range(12)),
        r40="".join(rng.choice(alnum) for _ in range(40)),
        r6="".join(rng.choice(alnum) for _ in range(6)).lower(),
    )


_FILLED: dict[int, list[str]] = {}


def text(rng: random.Random, size: int, tag: str, pool: list[str]) -> str:
    """About `size` bytes of lines from `pool`, filled in; the first line is unique (the time
    and a counter), so no two texts are equal; now and then a secret."""
    filled = _FILLED.get(id(pool))
    if filled is None:
        seeded = random.Random(len(pool))
        filled = [fill(seeded.choice(pool), seeded, "2026-01-05T09:00:00Z") for _ in range(20_000)]
        _FILLED[id(pool)] = filled
    count = max(1, size // 48)
    lines = [f"# {tag} #{rng.getrandbits(48):x}"]
    lines.extend(rng.choices(filled, k=count))
    if rng.random() < 0.05:
        lines.insert(rng.randrange(len(lines)), fill(rng.choice(SECRETS), rng, tag))
    return "\n".join(lines)


class Session:
    def __init__(self, rng: random.Random, index: int, start: datetime, cwd: str):
        self.rng = rng
        self.id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.index = index
        self.clock = start
        self.cwd = cwd
        self.parent = None
        self.lines: list[str] = []
        self.size = 0
        self.seq = 0

    def tick(self, seconds: float) -> str:
        self.clock += timedelta(seconds=seconds)
        return self.clock.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.clock.microsecond // 1000:03d}Z"

    def emit(self, record: dict, sidechain: bool = False, parent=None) -> str:
        self.seq += 1
        uid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        record.update({
            "parentUuid": self.parent if parent is None else parent,
            "isSidechain": sidechain,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.id,
            "version": "1.0.98",
            "gitBranch": "main",
            "uuid": uid,
            "timestamp": self.tick(self.rng.uniform(0.02, 3.0)),
        })
        line = json.dumps(record, ensure_ascii=False)
        self.lines.append(line)
        self.size += len(line.encode()) + 1
        if not sidechain:
            self.parent = uid
        return uid

    def assistant(self, content: list, sidechain=False, parent=None) -> str:
        message_id = f"msg_{self.index:05d}_{self.seq:06d}"
        usage = {"input_tokens": self.rng.randrange(3, 20), "cache_creation_input_tokens": self.rng.randrange(0, 3000),
                 "cache_read_input_tokens": self.rng.randrange(10_000, 80_000), "output_tokens": 1}
        uid = None
        # One response over several streamed lines, each repeating (growing) usage.
        for i, block in enumerate(content):
            usage = dict(usage, output_tokens=usage["output_tokens"] + self.rng.randrange(5, 400))
            uid = self.emit({"type": "assistant", "requestId": f"req_{message_id}", "message": {
                "id": message_id, "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
                "content": [block], "stop_reason": None, "usage": usage}}, sidechain, parent if i == 0 else uid)
        return uid

    def tool(self, rng: random.Random, tag: str, sidechain=False, parent=None) -> str:
        tool_id = f"toolu_{self.index:05d}_{self.seq:06d}"
        kind = rng.choices(["Bash", "Read", "Edit", "Write", "Grep"], [40, 25, 15, 10, 10])[0]
        path = f"{self.cwd}/src/{rng.choice(WORDS)}_{rng.randrange(40)}.rs"
        failed = rng.random() < 0.12
        size = int(rng.lognormvariate(7.5, 1.2))  # median ≈ 1.8 kB, long tail
        if kind == "Bash":
            command = rng.choice(["cargo test", "npm run build", "pytest -x", f"rg {rng.choice(WORDS)} src", "ls -la", "git status"])
            tool_input = {"command": command, "description": "run it"}
            output = text(rng, size, tag, LOG)
            result = {"stdout": output, "stderr": "", "interrupted": False, "isImage": False}
        elif kind == "Read":
            tool_input = {"file_path": path}
            content = text(rng, size, tag, CODE)
            output = content
            result = {"type": "text", "file": {"filePath": path, "content": content, "numLines": content.count("\n") + 1,
                                               "startLine": 1, "totalLines": content.count("\n") + 1}}
        elif kind == "Edit":
            original = text(rng, size, tag, CODE)
            old = original.split("\n")[0]
            new = fill(rng.choice(CODE), rng, tag)
            tool_input = {"file_path": path, "old_string": old, "new_string": new}
            output = f"The file {path} has been updated."
            result = {"filePath": path, "oldString": old, "newString": new, "originalFile": original,
                      "structuredPatch": [], "userModified": False, "replaceAll": False}
        elif kind == "Write":
            content = text(rng, size, tag, CODE)
            tool_input = {"file_path": path, "content": content}
            output = f"File created successfully at: {path}"
            result = {"type": "create", "filePath": path, "content": content, "structuredPatch": []}
        else:
            tool_input = {"pattern": rng.choice(WORDS), "path": self.cwd}
            output = "\n".join(f"{self.cwd}/src/{rng.choice(WORDS)}.rs" for _ in range(size // 60 + 1))
            result = {"mode": "files_with_matches", "filenames": output.split("\n"), "numFiles": 3}
        use = self.assistant([{"type": "tool_use", "id": tool_id, "name": kind, "input": tool_input}], sidechain, parent)
        block = {"tool_use_id": tool_id, "type": "tool_result", "content": output}
        if failed:
            block["is_error"] = True
            result = "Error: " + output[:2000]
        return self.emit({"type": "user", "message": {"role": "user", "content": [block]}, "toolUseResult": result},
                         sidechain, use)

    def turn(self, rng: random.Random, target: int) -> None:
        tag = self.tick(0)
        self.emit({"type": "user", "message": {"role": "user", "content": text(rng, rng.randrange(80, 600), tag, LOG)}})
        self.assistant([{"type": "text", "text": text(rng, rng.randrange(100, 800), tag, CODE)}])
        for _ in range(rng.randrange(4, 14)):
            if self.size >= target:
                return
            if rng.random() < 0.04:
                self.subagent(rng, tag)
            else:
                self.tool(rng, tag)
        self.assistant([{"type": "text", "text": "Done: " + text(rng, rng.randrange(100, 400), tag, LOG)}])

    def subagent(self, rng: random.Random, tag: str) -> None:
        prompt = "Investigate " + text(rng, 200, tag, LOG)
        tool_id = f"toolu_{self.index:05d}_{self.seq:06d}_task"
        use = self.assistant([{"type": "tool_use", "id": tool_id, "name": "Task",
                               "input": {"subagent_type": "general-purpose", "description": "Investigate", "prompt": prompt}}])
        side = self.emit({"type": "user", "message": {"role": "user", "content": prompt}}, True, None)
        for _ in range(rng.randrange(2, 6)):
            side = self.tool(rng, tag, True, side)
        self.emit({"type": "user", "message": {"role": "user", "content": [
            {"tool_use_id": tool_id, "type": "tool_result", "content": [{"type": "text", "text": "Summary: done"}]}]},
            "toolUseResult": {"content": [{"type": "text", "text": "Summary: done"}], "totalTokens": 1000}}, False, use)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--total-mb", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    per_file = int(args.total_mb * 1e6 / args.files)
    start = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    total = 0
    for i in range(args.files):
        project = args.out / f"-work-project-{i // 50:03d}"
        project.mkdir(parents=True, exist_ok=True)
        session = Session(rng, i, start + timedelta(hours=i), f"/work/project-{i // 50:03d}")
        target = int(per_file * rng.uniform(0.7, 1.3))
        while session.size < target:
            session.turn(rng, target)
        with open(project / f"{session.id}.jsonl", "w", encoding="utf-8") as f:
            f.write("\n".join(session.lines))
            f.write("\n")
        total += session.size
    print(f"wrote {args.files} transcripts, {total / 1e6:.1f} MB, into {args.out}")


if __name__ == "__main__":
    main()
