"""Side-by-side benchmarks of ginpipe against hand-written equivalents (see README.md)."""
