"""``python -m embedding [--host H] [--port P]``: serve embedding on its port."""

import sys

from services.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", "embedding", *sys.argv[1:]]))
