"""``make demo``: the end-to-end demo migration on the bundled sandboxes.

Arrives with the Apto pair (issue 5). Until then it says so and exits non-zero, rather than pretend.
"""

from __future__ import annotations

import sys


def main() -> int:
    print("make demo: the Apto -> Odoo demo is not built yet (it arrives with the Apto pair).\n"
          "What exists today: `make test`, `make bench`, and the sandboxes (`crm-sandbox --help`).",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
