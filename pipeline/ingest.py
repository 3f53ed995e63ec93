"""``python -m pipeline.ingest``: the course's command name, kept (pipeline/cli/ingest.py)."""

import sys

from pipeline.cli.ingest import main

if __name__ == "__main__":
    sys.exit(main())
