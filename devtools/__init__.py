"""Demo and development apparatus, kept out of the production apps (ARCHITECTURE §9).

`manage.py up` (what `python3 dev.py up` runs) supervises the service set; `embedded` starts
PostgreSQL and Redis from pip packages when no DATABASE_URL / REDIS_URL is given; `emulator` is
the Polymarket-compatible upstream the demo and the tests read. Nothing in ingest/, marts/,
scoring/ or api/ imports from here.
"""
