"""How long the bucket keeps a shot's earlier versions: an S3 lifecycle rule, and applying it.

Every shot is stored twice (:mod:`screenshots.pipeline.store`): under its deterministic key,
which always holds the latest image, and under its version key, ``<key stem>/<stamp>.<ext>``,
the URL's history. Without a rule the versions grow with every run. Both live under the same
prefix, so a rule cannot tell them apart by prefix: versions carry the object tag
:data:`VERSION_TAGS` and the rule (:func:`configuration`) expires objects with that tag
``SCREENSHOT_VERSION_DAYS`` days after they were written (90 by default; 0: no rule). The
latest image, its thumbnail and diff images are never tagged, so they stay.

``python -m screenshots.storage.lifecycle`` prints the rule as the JSON that
``aws s3api put-bucket-lifecycle-configuration --lifecycle-configuration file://rule.json``
takes; ``--apply`` puts it on ``SCREENSHOT_BUCKET`` (replacing the bucket's other rules, as S3's
API does: merge them by hand if the bucket has some). The Compose stack applies it at start.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from screenshots.core.errors import ScreenshotError
from screenshots.core.settings import Settings, load_settings

#: The object tags of a version (S3 tag keys are case-sensitive, at most 128 characters).
VERSION_TAGS = {"screenshots-kind": "version"}
#: The rule's ID in the bucket's lifecycle configuration.
RULE_ID = "screenshots-versions"


def configuration(version_days: int, key_prefix: str = "") -> dict[str, Any]:
    """The bucket lifecycle configuration that expires versions after ``version_days`` days
    (the ``LifecycleConfiguration`` of boto3's ``put_bucket_lifecycle_configuration``)."""
    if version_days < 1:
        raise ValueError("version_days must be at least 1 (0 means: no rule)")
    (tag_key, tag_value), = VERSION_TAGS.items()
    tag = {"Key": tag_key, "Value": tag_value}
    selected: dict[str, Any] = {"Tag": tag}
    if key_prefix:
        selected = {"And": {"Prefix": key_prefix, "Tags": [tag]}}
    rule = {
        "ID": RULE_ID,
        "Status": "Enabled",
        "Filter": selected,
        "Expiration": {"Days": version_days},
    }
    return {"Rules": [rule]}


def apply(settings: Settings) -> dict[str, Any] | None:
    """Put the rule of ``settings`` on its bucket; the configuration put, or ``None`` when
    there is nothing to put (no bucket, or ``SCREENSHOT_VERSION_DAYS=0``)."""
    if settings.bucket is None or settings.version_days == 0:
        return None
    from screenshots.storage import create_storage
    from screenshots.storage.s3 import S3Storage

    storage = create_storage(settings, None)
    assert isinstance(storage, S3Storage)
    config = configuration(settings.version_days, settings.key_prefix)
    storage.put_lifecycle(config)
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m screenshots.storage.lifecycle",
        description="Print (or --apply) the bucket lifecycle rule that bounds how long a "
        "shot's earlier versions are kept.",
        epilog="SCREENSHOT_BUCKET, SCREENSHOT_KEY_PREFIX, SCREENSHOT_VERSION_DAYS and the AWS_* "
        "variables come from the environment.",
    )
    parser.add_argument("--apply", action="store_true", help="put the rule on the bucket")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if settings.version_days == 0:
            print("SCREENSHOT_VERSION_DAYS=0: versions are kept for ever, no rule", file=sys.stderr)
            return 0
        if not args.apply:
            config = configuration(settings.version_days, settings.key_prefix)
            print(json.dumps(config, indent=2))
            return 0
        if apply(settings) is None:
            print("error: --apply needs SCREENSHOT_BUCKET", file=sys.stderr)
            return 2
    except ScreenshotError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"lifecycle rule {RULE_ID!r} applied to bucket {settings.bucket!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
