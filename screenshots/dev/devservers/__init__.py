"""Real back-end servers started on loopback for tests, benchmarks and the demo."""
