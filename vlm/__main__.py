"""``python -m vlm [--host H] [--port P]``: serve vlm on its port."""

import sys

from services.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", "vlm", *sys.argv[1:]]))
