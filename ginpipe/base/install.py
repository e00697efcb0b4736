"""The name ginpipe is installed under.

The import name and the command are ``ginpipe``; the distribution on the package index is
``ginpipe-ml``, because the index's ``ginpipe`` belongs to an unrelated project. Every
install line ginpipe prints comes from here, so none can name the wrong package.
"""

DISTRIBUTION = "ginpipe-ml"


def install_line(extra: str | None = None) -> str:
    """``pip install "ginpipe-ml[extra]"`` (or without the extra)."""
    if extra:
        return f'pip install "{DISTRIBUTION}[{extra}]"'
    return f"pip install {DISTRIBUTION}"
