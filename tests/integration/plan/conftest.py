"""The plan suites' shared checks (``proposal_checks``) importable by their test modules (pytest imports them in
``importlib`` mode, without their folder on ``sys.path``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
