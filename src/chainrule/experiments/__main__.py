"""``python -m chainrule.experiments NAME [--quick] [--out DIR] [--seed N]``."""

import sys

from chainrule.experiments.cli import main

sys.exit(main())
