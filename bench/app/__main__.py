"""`python -m bench.app --host H --port P`: entry point used inside containers and VMs."""

import sys

from bench.app.server import main

sys.exit(main())
