"""The reader's program: three batches, then a model reply it cannot parse (it fails)."""

import json

import devtrace

from myapp import jobs

devtrace.configure(service_name="myapp")
store = jobs.Store()
for batch in range(3):
    jobs.process(store, batch)
reply = '{"steps": ["Outline: Ship it",'
with devtrace.error_context("plan.parse", state=lambda: store.data):
    plan = json.loads(reply)
