"""`sdeliver` and `python -m sdeliver`."""

import sys


def main() -> None:
    from .app import main as run

    sys.exit(run())


if __name__ == "__main__":
    main()
