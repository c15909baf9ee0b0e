"""A pre-commit hook that rewrites every file it is given (upper case), as ``--fix`` hooks do."""

import sys
from pathlib import Path

for name in sys.argv[1:]:
    path = Path(name)
    path.write_text(path.read_text().upper())
