"""``python -m dqueue``: run one node, as ``bin/dqueue`` and the ``dqueue`` command do."""

import sys

from dqueue.supervisor import main

if __name__ == "__main__":
    sys.exit(main())
