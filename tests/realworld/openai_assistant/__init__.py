"""App 4 of the real-instrumentation corpus: the `openai` client under the official OpenAI
instrumentation (opentelemetry-instrumentation-openai-v2) against a local server speaking the
Chat Completions API — see __main__.py for what it plants."""
