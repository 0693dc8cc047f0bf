"""``python -m inspector``: the same command line as ``document-inspector``."""

import sys

from inspector.cli import main

sys.exit(main())
