"""`make bench`: throughput and CPU cost of the screenshot pipeline on this machine."""
