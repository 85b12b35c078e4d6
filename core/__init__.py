"""The bottom floor: framework-free code that every other package may import.

Settings, logging, the clock and time format, the version, and the pure logic
of the features (short codes, primality, Collatz, signatures, safe URLs,
back-off). Nothing here imports Falcon, SQLAlchemy, ZeroMQ or another package
of this project, so a worker process loads only what it uses.
"""
