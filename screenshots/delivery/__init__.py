"""Runners turn a stream of shots into a stream of results.

- :mod:`screenshots.delivery.embedded`: in this process, ``--concurrency`` parallel captures, no
servers;
- :mod:`screenshots.delivery.distributed`: through RabbitMQ to Celery workers, results from Redis.

Both keep a bounded number of shots in flight, so memory does not grow with the input.
"""
