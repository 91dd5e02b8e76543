"""Reports: what the CLI, API and dashboard ask of the diff engine."""

# The output formats of `diff` and `gate` (here: the CLI checks them before loading more).
FORMATS = ("table", "json", "markdown", "junit", "github")
