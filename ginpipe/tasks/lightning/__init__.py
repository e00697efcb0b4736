"""Lightning glue for ``fit``: the training module, checkpoint files, resumable logging."""
