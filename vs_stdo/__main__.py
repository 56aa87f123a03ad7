"""`python -m vs_stdo`: the same as the `stdo` command."""
import sys

from .cli import main

sys.exit(main())
