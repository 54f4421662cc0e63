"""`python -m qwqrl` (what `accelerate launch -m qwqrl` and `torchrun -m qwqrl` run)."""
import sys

from qwqrl.cli import main

sys.exit(main())
