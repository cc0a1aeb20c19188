"""python -m app.spawner: app.children's parent (no argument) or child (`child`). The functions
live in app.children so a plan names them by their module (this one runs as __main__)."""

import sys

from app.children import main

main(sys.argv[1:])
