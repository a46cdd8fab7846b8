"""Set up an executed tutorial page: work from the repository root, write only to a scratch folder.

Every tutorial's first (hidden) cell runs ``from tutorial_setup import scratch``. The commands on
the pages are then those a reader types in the repository root: ``exopk`` is the ``exopk``
command of the Python that runs the page, and results go to ``scratch``, a temporary folder that
is removed when the page's kernel ends, so that building the documentation leaves the checkout
as it was.
"""

import atexit
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.chdir(ROOT)

scratch = Path(tempfile.mkdtemp(prefix="exopk_docs_"))
atexit.register(shutil.rmtree, scratch, ignore_errors=True)

_bin = scratch / "bin"
_bin.mkdir()
_command = _bin / "exopk"
_command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m exopk "$@"\n')
_command.chmod(_command.stat().st_mode | stat.S_IXUSR)
os.environ["PATH"] = f"{_bin}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ["MPLBACKEND"] = "Agg"
