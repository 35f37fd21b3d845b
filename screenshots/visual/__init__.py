"""What a screenshot looks like, in numbers: perceptual hashes, thumbnails, pixel diffs and
look-alike groups (issue #12). Pure functions over image bytes and hashes, no storage: the
store phase (:mod:`screenshots.pipeline.store`), run comparison
(:mod:`screenshots.batch.compare`) and the report call them."""
