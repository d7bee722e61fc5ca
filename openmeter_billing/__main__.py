"""``python -m openmeter_billing`` runs the command-line tool."""

from .cli import main

raise SystemExit(main())
