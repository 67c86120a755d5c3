"""``python -m uae_plugin.cli``: the ``uae`` command."""

import sys

from . import main

sys.exit(main())
