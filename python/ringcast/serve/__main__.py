"""The entry point of a supervised item's process (see ``_child``): the
supervisor runs ``python -m ringcast.serve SPEC_JSON``."""

import sys

from ._child import main

sys.exit(main(sys.argv[1:]))
