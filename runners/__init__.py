"""Runners turn a stream of shots into a stream of results.

- :mod:`runners.embedded`: in this process, ``--concurrency`` parallel captures, no servers;
- :mod:`runners.distributed`: through RabbitMQ to Celery workers, results from Redis.

Both keep a bounded number of shots in flight, so memory does not grow with the input.
"""
