"""Named crash points for the reliability tests.

``CITIZENBOT_FAILPOINTS=after_store`` makes the process kill itself with SIGKILL
the moment it reaches that point, exactly as a power cut or an OOM kill would.
Unset (always, in production) it costs one environment lookup.
"""

from __future__ import annotations

import os
import signal

ENVIRONMENT_VARIABLE = "CITIZENBOT_FAILPOINTS"


def reach(name: str) -> None:
    """Die here, unannounced, when the failpoint ``name`` is switched on."""
    switched_on = os.environ.get(ENVIRONMENT_VARIABLE)
    if switched_on and name in switched_on.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
