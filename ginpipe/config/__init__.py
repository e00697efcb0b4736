"""Config files to one bound gin config: text, names, shipped configs, up-front checks.

Above ``ginpipe.base``. ``ginapi`` is the only module touching gin's private state.
"""
