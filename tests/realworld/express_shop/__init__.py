"""App 3 of the real-instrumentation corpus: Node.js Express with pg and fetch under
@opentelemetry/auto-instrumentations-node — see __main__.py for what it plants."""
