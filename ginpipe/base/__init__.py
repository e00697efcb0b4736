"""The bottom layer: errors and exit codes, atomic writes, OS errors as one line, did-you-mean.

Imports nothing else of ginpipe; everything above may use it.
"""
