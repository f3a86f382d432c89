"""``python -m pytest_agentbench ...`` is the ``agentbench`` command (for checkouts without the console script)."""

from __future__ import annotations

import sys

from pytest_agentbench.cli import main

sys.exit(main())
