"""The installed package's version, read on demand: importing importlib.metadata
costs 0.04 s, a tenth of a small image's whole run on the command line."""


def package_version():
    """nlmeans's version as installed, or "0+unknown" in a source tree that is not."""
    from importlib.metadata import PackageNotFoundError, version  # 0.04 s: see above

    try:
        return version("nlmeans")
    except PackageNotFoundError:
        return "0+unknown"
