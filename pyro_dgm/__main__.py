import sys

from pyro_dgm.cli import main

sys.exit(main())
