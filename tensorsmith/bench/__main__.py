import sys

from .command import main

if __name__ == "__main__":  # guarded: probe subprocesses re-import the main module
    sys.exit(main())
