"""``python -m tts [--host H] [--port P]``: serve tts on its port."""

import sys

from services.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", "tts", *sys.argv[1:]]))
