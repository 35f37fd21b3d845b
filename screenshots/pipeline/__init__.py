"""One URL end to end: capture, store, link, row; and the reuse of a recent screenshot."""
