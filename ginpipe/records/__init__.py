"""Records: reading, labelling, comparing and removing finished runs.

What ``runs``, ``diff``, ``tag``, ``note``, ``rm``, ``compare`` and ``cache`` show or change,
from the files runs leave behind (``run.json``, ``resolved.gin``, ``labels.json``), never by
running anything: no torch, no gin parsing. Below the CLI and beside the runner
(``ginpipe.runs``), which it never imports, nor the runner it; the run directory's layout
both use is ``ginpipe.layout``.
"""
