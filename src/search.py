"""`python -m src.search <sweep dir>`: the views of a finished search (src/report/search.py)."""

import sys

from src.report.search import main

if __name__ == "__main__":
    sys.exit(main())
