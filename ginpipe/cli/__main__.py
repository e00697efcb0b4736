"""``python -m ginpipe.cli``: the console script, where it is not on ``PATH``."""

from ginpipe.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
