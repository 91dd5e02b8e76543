"""Reports: what the CLI, API and dashboard ask of the diff engine."""
