"""``crm-sandbox``: run one sandbox server in the foreground.

    crm-sandbox odoo --port 8069
    crm-sandbox apto --port 8081 --scale 1 --seed 7
    crm-sandbox postgres --datadir var/pg   (a private PostgreSQL, stopped on Ctrl-C)
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "odoo": "crm_sandbox.odoo.server",
    "apto": "crm_sandbox.apto.server",
    "link-app": "crm_sandbox.link_app.server",
    "postgres": "crm_sandbox.pg",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        print("commands: " + ", ".join(COMMANDS), file=sys.stderr)
        return 0 if argv and argv[0] in {"-h", "--help"} else 2
    module = importlib.import_module(COMMANDS[argv[0]])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
