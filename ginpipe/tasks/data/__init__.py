"""Data helpers behind the load, split and features tasks, and the torch Datasets.

Nothing is imported here: the torch Datasets (``datasets``, ``image_dataset``,
``decoded_files``, ``shard_dataset``) load torch, which validating a config must not need.
"""
