"""How long the API's results last: ``SCREENSHOT_API_RESULT_TTL`` for job records and rows in
Redis (every key of a job expires then, see :mod:`screenshots.api.jobstore`), and a bucket
lifecycle rule for the images.

:func:`lifecycle_configuration` builds the rule as the JSON that
``aws s3api put-bucket-lifecycle-configuration --bucket B --lifecycle-configuration
file://rule.json`` takes (and boto3's ``put_bucket_lifecycle_configuration``): every object
under the key prefix (images ``<stem>.<ext>``, their versions ``<stem>/<stamp>.<ext>``,
thumbnails ``<stem>.thumb.webp``, diff images ``<stem>.diff.png``) expires whole days after it
was written (the TTL rounded up: S3 counts days), as do noncurrent object versions and
unfinished multipart uploads. S3 keeps one configuration per bucket, so when
``SCREENSHOT_VERSION_DAYS`` is shorter the versions' rule
(:func:`screenshots.storage.lifecycle.configuration`) is kept in it too.
``python -m screenshots.api.retention`` prints it for the current settings.
"""

from __future__ import annotations

import json
import math
from typing import Any

from screenshots.core.keys import DEFAULT_KEY_PREFIX
from screenshots.storage import lifecycle

#: The rule's ID in the bucket's lifecycle configuration.
RULE_ID = "screenshots-api-results"
DAY = 24 * 3600


def lifecycle_configuration(
    result_ttl: int, key_prefix: str = DEFAULT_KEY_PREFIX, version_days: int = 0
) -> dict[str, Any]:
    """The bucket's lifecycle configuration: what the API stores expires after
    ``result_ttl`` seconds (rounded up to days), versions after ``version_days`` if sooner."""
    days = max(1, math.ceil(result_ttl / DAY))
    rule: dict[str, Any] = {
        "ID": RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": key_prefix},
        "Expiration": {"Days": days},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    rules = [rule]
    if 0 < version_days < days:
        rules += lifecycle.configuration(version_days, key_prefix)["Rules"]
    return {"Rules": rules}


def main() -> None:
    from screenshots.api.config import load_result_ttl
    from screenshots.core.settings import load_settings

    settings = load_settings()
    configuration = lifecycle_configuration(
        load_result_ttl(), settings.key_prefix, settings.version_days
    )
    print(json.dumps(configuration, indent=2))


if __name__ == "__main__":
    main()
