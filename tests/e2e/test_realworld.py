"""The real-instrumentation corpus (tests/realworld/): small apps of a few services each on
loopback, instrumented only by the official OpenTelemetry auto-instrumentation packages, each
run under both HTTP semantic-convention generations (the instrumentations' default, and
OTEL_SEMCONV_STABILITY_OPT_IN=http). Each app measures its planted problems while it runs and
prints its ground truth.

Per app and generation, from one `devtrace insights --json`: every planted problem among the
first (planted + 2) findings with its numbers within 15 % (the scenario suite's `check`), and a
saving reported by one finding only; no call that sends a value an earlier call returned grouped as sequential work, and one
that sends what an earlier call received (or its server side saw) left out of the group with the
reason and the saving if it proved independent; no finding that is
false of the app (each one matches a planted problem or an entry of the app's `also_true`, which
says why it is true); and the same findings (kind and operation) under both generations.

DEVTRACE_REALWORLD_TABLE=PATH appends the table rows (app, generation, problem, rank, number,
truth) of every cell run to PATH, as docs/analysis.md shows them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import REPO_ROOT, clean_env, postgres_url, start_server, stop_server
from test_scenarios import check, matches, within

REALWORLD = REPO_ROOT / "tests" / "realworld"
GENERATIONS = {"default": {}, "stable": {"OTEL_SEMCONV_STABILITY_OPT_IN": "http"}}
# Each app and the kinds of problem it plants, in its truth's order (the docs table has a row
# for each, under each generation).
APPS = {
    "flask_orders": ["repeated_calls", "failure_correlation"],
    "fastapi_quotes": ["sequential_work", "concurrency_limit"],
    "express_shop": ["repeated_calls", "sequential_work", "concurrency_limit", "lock_contention", "failure_correlation"],
    "openai_assistant": ["token_waste", "sequential_work"],
    "flask_offers": ["sequential_work"],
}
ANALYSIS_DOC = REPO_ROOT / "docs" / "analysis.md"

_cells: dict[tuple[str, str], tuple[dict, list[dict]]] = {}


def realworld_python() -> Path:
    """The apps' own virtualenv (tests/realworld/requirements.txt), which scripts/test makes."""
    path = Path(os.environ.get("DEVTRACE_REALWORLD_PYTHON") or REPO_ROOT / ".venv-realworld" / "bin" / "python")
    if not path.exists():
        message = f"{path} is missing: scripts/test installs tests/realworld/requirements.txt there"
        if os.environ.get("CI", "") not in ("", "false"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def app_command(app: str) -> list[str]:
    """Every app's driver is a Python module (its services may be Node.js)."""
    if (REALWORLD / app / "package.json").exists() and not (REALWORLD / app / "node_modules").is_dir():
        pytest.fail(f"tests/realworld/{app}/node_modules is missing: scripts/test runs `npm ci` there")
    return [str(realworld_python()), "-m", app]


def run_cell(devtrace_bin: Path, app: str, generation: str) -> tuple[dict, list[dict]]:
    """Runs the app under one generation against its own `devtrace serve`; returns its truth
    and the findings of one `insights --json` (cached: the cross-generation test reuses them)."""
    if (app, generation) in _cells:
        return _cells[app, generation]
    with tempfile.TemporaryDirectory(prefix=f"realworld-{app}-{generation}-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        server = start_server(devtrace_bin, data_dir, Path(tmp) / "serve.log")
        try:
            proc = subprocess.run(
                app_command(app),
                cwd=REALWORLD,
                env=clean_env(
                    OTEL_EXPORTER_OTLP_ENDPOINT=server.http_endpoint,
                    DEVTRACE_TEST_POSTGRES=postgres_url(),
                    **GENERATIONS[generation],
                ),
                capture_output=True,
                text=True,
                timeout=240,
            )
            assert proc.returncode == 0, f"{app} exited {proc.returncode}\n{proc.stderr[-4000:]}"
            truth = json.loads(proc.stdout.strip().splitlines()[-1])
            # Every service flushed its spans at exit: each user request is one stored trace
            # (besides the app's `background` work outside any request, each with its reason).
            listed = server.ls("--limit", "1000")
            requests = [t for t in listed if t["root_name"] not in truth.get("background", {})]
            assert len(requests) == truth["traces"], (
                f"{len(requests)} traces stored, {truth['traces']} requests: "
                f"{sorted((t['service'], t['root_name']) for t in listed)}"
            )
            findings = server.json("insights", "--json", "--all")["findings"]
        finally:
            stop_server(server, signal.SIGTERM)
    _cells[app, generation] = (truth, findings)
    return truth, findings


def table_rows(app: str, generation: str, truth: dict, findings: list[dict]) -> list[str]:
    """The docs table's rows of one cell: each planted problem's rank and measured number."""
    rows = []
    for plant in truth["planted"]:
        found = [(i, f) for i, f in enumerate(findings, 1) if matches(f, plant)]
        rank, finding = found[0] if found else ("missed", None)
        if "failing_edge" in plant:
            want = f"fails from {plant['failing_edge']}, passes to {plant['passing_edge']}"
            got = (
                f"fails from {finding['numbers'].get('failing_edge', '?'):g}, passes to "
                f"{finding['numbers'].get('passing_edge', '?'):g}"
                if finding and "failing_edge" in finding["numbers"]
                else "no separation"
            )
        elif "tokens_per_run" in plant:
            want = f"{plant['tokens_per_run']:.0f} tokens/run"
            got = f"{finding['impact']['tokens_per_run']:.0f} tokens/run" if finding else "—"
        else:
            want = f"{plant['saving_nanos'] / 1e6:.1f} ms/run"
            got = f"{finding['saving_nanos'] / 1e6:.1f} ms/run" if finding else "—"
            if "saving_if_independent_nanos" in plant:
                want += f" ({plant['saving_if_independent_nanos'] / 1e6:.1f} if independent)"
                if finding:
                    got += f" ({finding['numbers']['saving_if_independent_nanos'] / 1e6:.1f} if independent)"
        rows.append(f"| {app} | {generation} | {plant['kind']} | {rank} | {got} | {want} |")
    return rows


def is_true_of_app(finding: dict, truth: dict) -> bool:
    return any(matches(finding, p) for p in truth["planted"]) or any(
        matches(finding, t) for t in truth.get("also_true", [])
    )


@pytest.mark.parametrize("generation", list(GENERATIONS))
@pytest.mark.parametrize("app", list(APPS))
def test_realworld_cell(devtrace_bin, app, generation):
    truth, findings = run_cell(devtrace_bin, app, generation)
    assert [p["kind"] for p in truth["planted"]] == APPS[app], "the docs table's rows follow APPS"
    table = os.environ.get("DEVTRACE_REALWORLD_TABLE")
    if table:
        with open(table, "a") as f:
            f.write("\n".join(table_rows(app, generation, truth, findings)) + "\n")
    summary = "\n".join(f"{i}. [{f['kind']}] {f['title']}" for i, f in enumerate(findings, 1))
    false = [f for f in findings if not is_true_of_app(f, truth)]
    for dependent in truth["dependent"]:
        for f in findings:
            if f["kind"] == "sequential_work":
                assert dependent not in f["title"], (
                    f"{dependent} sends a value an earlier call returned, yet it is grouped:\n{summary}"
                )
    check(_Answer(findings), truth)
    for plant in truth["planted"]:
        if "held_out" in plant:
            held_out_is_said(plant, [f for f in findings if matches(f, plant)][0], summary)
    # A saving is claimed once: two findings of one planted problem would count its time twice
    # (docs/analysis.md: no span's time is claimed by two findings).
    for plant in truth["planted"]:
        reported = [f["title"] for f in findings if matches(f, plant)]
        if "saving_nanos" in plant:
            assert len(reported) == 1, f"{plant['kind']} reported {len(reported)} times:\n{summary}"
    assert not false, "findings false of the app:\n" + "\n".join(f"[{f['kind']}] {f['title']}" for f in false)


def held_out_is_said(plant: dict, finding: dict, summary: str) -> None:
    """A call that may need an earlier call's answer (it sends what that call received or its
    server side saw) is left out of the group, the finding says why, and it gives the saving
    if the call proved independent, within 15 % of what the app measured."""
    text = finding["recommendation"]
    assert plant["held_out"] not in finding["title"], summary
    said = text.split("Left out: ", 1)[-1] if "Left out: " in text else ""
    assert plant["held_out"] in said and "may need the answer of" in said, text
    assert said.count("may need the answer of") == 1, f"one reason per pair of calls, not per run:\n{text}"
    assert within(finding["numbers"]["saving_if_independent_nanos"], plant["saving_if_independent_nanos"]), (
        f"if independent: {finding['numbers']['saving_if_independent_nanos']:.0f} vs truth "
        f"{plant['saving_if_independent_nanos']:.0f}\n{text}"
    )


class _Answer:
    """The findings already fetched, in the shape `check` asks a server for."""

    def __init__(self, findings: list[dict]) -> None:
        self.findings = findings

    def json(self, *args: str) -> dict:
        return {"findings": self.findings}


@pytest.mark.parametrize("app", list(APPS))
def test_realworld_same_findings_under_both_generations(devtrace_bin, app):
    seen = {}
    for generation in GENERATIONS:
        _, findings = run_cell(devtrace_bin, app, generation)
        seen[generation] = sorted((f["kind"], f.get("operation") or "") for f in findings)
    assert seen["default"] == seen["stable"], seen


def test_the_docs_table_has_every_cell():
    text = ANALYSIS_DOC.read_text()
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:3]) for line in text.splitlines() if line.startswith("| ")}
    missing = [
        (app, generation, kind)
        for app, kinds in APPS.items()
        for generation in GENERATIONS
        for kind in kinds
        if (app, generation, kind) not in rows
    ]
    assert not missing, f"docs/analysis.md's corpus table lacks rows for {missing}"
