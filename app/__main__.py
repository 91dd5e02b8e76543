"""`python -m app` runs the envparity command line."""

from app.cli import main

main()
