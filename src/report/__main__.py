"""`python -m src.report <sweep dir>`: results.csv and the report (src/report/grid.py)."""

import sys

from src.report.grid import main

sys.exit(main())
