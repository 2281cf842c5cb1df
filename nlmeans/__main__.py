"""``python -m nlmeans``: the same command line as ``nlmeans``."""

from nlmeans_cli.main import main

main()
