"""``python -m devtrace.recover FILE``: writes the window a dead process left in its recorder
file into its trace (through the OpenTelemetry SDK, to ``OTEL_EXPORTER_OTLP_ENDPOINT``), then
removes the file. ``devtrace run --record`` runs it for the processes of a run that died.

With ``--json`` it prints what was written (trace and span ids, spans, events, window)."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtrace.recover", description=__doc__)
    parser.add_argument("file", help="a recorder file (/dev/shm/devtrace-flight-PID.ring, or one devtrace run kept)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    import devtrace
    from devtrace import recorder

    try:
        recorder.file_meta(args.file)
    except (OSError, ValueError) as error:
        print(f"devtrace.recover: {error}", file=sys.stderr)
        return 2
    devtrace.configure()
    result = recorder.recover(args.file)
    devtrace.shutdown()
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"recovered {result['spans']} spans ({result['events']} events) into trace {result['trace_id']}: "
            f"span devtrace.flight_window {result['span_id']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
