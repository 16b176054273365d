"""``python -m accel.experiments.race``: the process ``accel race`` starts."""
import sys

from .cli import main

sys.exit(main())
