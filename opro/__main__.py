"""``python -m opro [--host H] [--port P]``: serve opro on its port."""

import sys

from services.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", "opro", *sys.argv[1:]]))
