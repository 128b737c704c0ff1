"""``python -m meetbot`` is the ``meetbot`` command."""

import sys

from meetbot.cli import main

sys.exit(main())
