"""A helper of the measurement checks (not run on its own): how a check ends, its own status, 130
after Ctrl-C, 2 with one line when it cannot measure."""

from __future__ import annotations

import sys
from typing import Callable

INTERRUPTED = 130
CANNOT_MEASURE = 2


def run_check(body: Callable[[], int]) -> int:
    """body()'s exit status; Ctrl-C (cleanup has run on the way out) and a RuntimeError (one line
    on stderr: what could not be measured) end the check with their own status instead of a trace."""
    try:
        return body()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return CANNOT_MEASURE
