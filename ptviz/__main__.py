import sys

from ptviz.cli import main

sys.exit(main())
