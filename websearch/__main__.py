"""``python -m websearch [--host H] [--port P]``: serve websearch on its port."""

import sys

from services.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", "websearch", *sys.argv[1:]]))
