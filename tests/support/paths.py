"""Where the repository, the tests and their data files are."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"  # on a child's PYTHONPATH, `import support.x` works there too
FIXTURES = TESTS / "support" / "fixtures"
