"""`make bench` / `make bench-quick`: the pipeline against its ceiling and the naive design."""
