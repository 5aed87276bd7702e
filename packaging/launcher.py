"""Entry point of the desktop bundle: the same CLI as `workbench` (no arguments opens the app)."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the synthetic-corpus workers re-enter this executable
    from workbench.cli import main

    sys.exit(main())
