"""Where a study keeps its evidence, and what guards the writes.

- urls: store URLs from config or environment; passwords masked everywhere
- checks: scheme, driver and reachability of a store, before anything is written
- signals: Ctrl-C / SIGTERM held until a store write in progress ends
"""
