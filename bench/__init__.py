"""`make bench`: the service's real code, real Postgres and real HTTP server under simulated,
seeded model and embedder latencies. See README.md, section Benchmarks, and `python -m bench -h`."""
