"""``python -m captum_3dcam COMMAND``: the same as ``captum-3dcam COMMAND`` (:mod:`captum_3dcam.cli`)."""
import sys

from .cli import main

sys.exit(main())
