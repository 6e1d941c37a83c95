"""`python -m eokit` runs the command-line interface."""

from eokit.cli import main

raise SystemExit(main())
