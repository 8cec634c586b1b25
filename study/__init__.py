"""The driver side of the service: config, tuner wiring, tracking, queries, reports, CLI."""
