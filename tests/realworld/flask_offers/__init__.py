"""App 5 of the real-instrumentation corpus: a storefront (Flask, requests) whose later call
sends what an earlier call's answer chose — see __main__.py for what it plants."""
