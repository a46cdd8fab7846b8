"""``python -m exopk``: the same as the ``exopk`` command."""

import sys

from exopk.cli import main

sys.exit(main())
