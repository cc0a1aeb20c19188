"""python -m app.pooler: app.poolwork's process pool. The functions live in app.poolwork so a
plan names them by their module, and the worker unpickles them there (this one runs as
__main__)."""

from app.poolwork import main

main()
