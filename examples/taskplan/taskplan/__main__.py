import sys

from taskplan.cli import main

sys.exit(main())
