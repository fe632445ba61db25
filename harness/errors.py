"""The three ways a request can fail, each with its own outcome in a session."""


class UsageError(Exception):
    """Bad input from the user (unknown name, malformed option): one line, exit status 4."""


class Unavailable(Exception):
    """Data or weights cannot be had on this machine: the cell is skipped with these reasons, one
    per missing thing (its data, its weights), each saying how to get it."""

    def __init__(self, *reasons: str):
        super().__init__("; and ".join(reasons))
        self.reasons = tuple(reasons)


class RunFailed(Exception):
    """A training run that produced no valid result (no steps, non-finite loss, stale BN)."""
