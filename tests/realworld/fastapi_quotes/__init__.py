"""App 2 of the real-instrumentation corpus: FastAPI on asyncio with httpx's async client —
see __main__.py for what it plants."""
