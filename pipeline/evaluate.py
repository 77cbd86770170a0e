"""Entry point of ``python -m pipeline.evaluate --gt GT --pred PRED`` (and ``mcpa evaluate``).

The code lives in :mod:`pipeline.evaluation.evaluate`; this module only runs its ``main``.
"""

import sys

from pipeline.evaluation.evaluate import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
