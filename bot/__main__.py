"""``python -m bot`` is the same as the ``citizenbot`` command."""

import sys

from bot.cli import main

sys.exit(main())
