"""Developer tooling, apart from the product: benchmarks (``make bench``), the demo
(``make demo``) and real back-end servers started on loopback (SeaweedFS). The product never
imports this package."""
