"""``python -m peftbench``: the command line."""

from peftbench.cli.main import main

raise SystemExit(main())
