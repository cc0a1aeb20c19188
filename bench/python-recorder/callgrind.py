"""Instructions per event under callgrind: `python callgrind.py VARIANT N [THRESHOLD_MS]` runs
fib(22) N times with VARIANT (none, floor, flight, flight_plain: without its automatic values,
recorder; the recorder's threshold 1 ms unless
given: 1000 keeps no span, so only the drainer's building is measured); the difference between
N=2 and N=0 over 229,252 events is the per-event cost (docs/PERFORMANCE.md)."""
import sys
variant, n = sys.argv[1], int(sys.argv[2])
threshold_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 1
def fib(k): return k if k < 2 else fib(k-1) + fib(k-2)
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
trace.set_tracer_provider(TracerProvider())
import devtrace
from devtrace import _native
if variant == "floor": _native.bench_floor(True)
elif variant == "flight": r = devtrace.record(10, 16, signals=(), on_unhandled=False)
elif variant == "flight_plain": r = devtrace.record(10, 16, signals=(), on_unhandled=False, auto_values=False)
elif variant == "recorder": r = devtrace.record_calls("callgrind", threshold_ms=threshold_ms)
fib(3)
for _ in range(n): fib(22)
