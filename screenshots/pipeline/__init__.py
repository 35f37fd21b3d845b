"""One URL end to end: reuse, capture, store, row.

:mod:`~screenshots.pipeline.screenshot` composes the phases (:class:`Pipeline`, used by every
caller); :mod:`~screenshots.pipeline.capture` and :mod:`~screenshots.pipeline.store` are the
phases, :mod:`~screenshots.pipeline.run` what they share and the rows they end as,
:mod:`~screenshots.pipeline.retries` the attempt budget and backoff,
:mod:`~screenshots.pipeline.reuse` the reuse of a recent screenshot and
:mod:`~screenshots.pipeline.threadengines` the one engine per thread of every caller.
"""
