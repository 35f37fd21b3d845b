"""``make demo``: screenshots of the bundled example pages, with no servers to set up."""
