"""What a run needs to be rebuilt elsewhere: its environment lock and a container build
context (``ginpipe container``)."""
