"""Entry point of ``python -m pipeline.relink RUN_DIR`` (and ``mcpa relink``).

The code lives in :mod:`pipeline.identity.relink`; this module only runs its ``main``.
"""

import sys

from pipeline.identity.relink import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
