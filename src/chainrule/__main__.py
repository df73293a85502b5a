"""``python -m chainrule``: the ``chainrule`` command."""

import sys

from chainrule.cli import main

sys.exit(main())
