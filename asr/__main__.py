"""``python -m asr [--host H] [--port P]``: serve asr on its port."""

import sys

from services.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", "asr", *sys.argv[1:]]))
