"""An HTTP inference server for trained runs (``ginpipe serve``).

Above ``ginpipe.api`` and ``ginpipe.inference``: it loads run directories the way
``ginpipe predict`` does and answers requests with the same preprocessing and outputs.
"""
