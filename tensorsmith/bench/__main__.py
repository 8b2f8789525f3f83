import sys

from .default import main

sys.exit(main())
