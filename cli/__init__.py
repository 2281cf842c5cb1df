"""Command line front end of nlmeans (installed as the import package ``nlmeans_cli``)."""
