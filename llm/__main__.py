"""``python -m llm [--host H] [--port P]``: serve llm on its port."""

import sys

from services.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", "llm", *sys.argv[1:]]))
