"""Using a trained run: its saved model, prediction, export and a demo app.

Everything here reads only the run directory (``RUN/model/``, ``config.gin``); the cache
and the checkout that trained the run are not needed.
"""
