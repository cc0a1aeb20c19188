"""Runs the taskplan CLI from a checkout: python examples/taskplan/main.py add "Write docs"."""

import sys

from taskplan.cli import main

sys.exit(main())
