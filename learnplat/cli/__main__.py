"""`python -m learnplat.cli`: the same as the `learnplat` command."""

from .main import main

main()
