"""The engine's model of a pipeline: tasks, state, plan and execution, cache keys, the store.

Above ``ginpipe.config`` (cache keys read the bound config). Knows nothing of run
directories, datasets or models.
"""
