"""The standard pipeline steps: seed, load, split, features, fit, evaluate.

Each module holds a few ``@task`` functions; a config imports the modules whose tasks it
binds (``import ginpipe.tasks.load``). Importing this package alone loads nothing heavy.
"""
