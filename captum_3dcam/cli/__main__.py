"""``python -m captum_3dcam.cli``: the same as ``captum-3dcam``."""
import sys

from . import main

sys.exit(main())
