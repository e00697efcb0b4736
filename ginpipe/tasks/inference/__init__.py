"""What a run saves so that its model can be used later (``bundle``): read by
``ginpipe.inference``."""
