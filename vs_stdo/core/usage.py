"""The error of a command-line value that parses but cannot work (out of range, malformed, or two options that
exclude each other), found after argparse: `stdo` exits 2 for it, as argparse does for what it finds itself."""
from __future__ import annotations


class UsageError(ValueError):
    """A value the command line gave is wrong; the message names the option, the value and what fits."""
