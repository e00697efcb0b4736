"""Using a trained run: ``load_run``, prediction, export and a demo app.

Everything here reads only the run directory (``RUN/model/``, ``config.gin``); the cache
and the checkout that trained the run are not needed. This layer sits above the engine and
the task library: it reads run directories with one and rebuilds models with the other.
"""
