"""``python -m modelyard`` runs the command line."""

from modelyard import cli

raise SystemExit(cli.main())
