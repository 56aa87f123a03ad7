"""`python -m vs_stdo` is the `stdo` command; `torchrun ... -m vs_stdo train ...` trains on several processes."""
import sys

from .cli import main

sys.exit(main())
