"""taskplan: a small task-planning CLI, instrumented with the devtrace Python helpers.

It keeps its tasks in a JSON file, takes a file lock around every update, and asks a
(simulated) LLM to plan each task's steps. See README.md beside this package.
"""
