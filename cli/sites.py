"""An environment's site whichever its hosting: what it serves, and a deploy's early upload.

`site.hosting: s3-website` serves the bucket's root, which publish.py rewrites in place
(config.json last); `cloudfront` serves the prefix of the release the environment's
KeyValueStore names (hosting.py). Release code asks here and never needs to know which.
"""

from __future__ import annotations

import threading

from . import hosting, publish
from .project import Project
from .publish import Prior, Published, SiteFile
from .resources import cdn


def read_published(project: Project, bucket: str) -> Published:
    """What the bucket serves: the release its config.json names (an S3 website), or the
    live release of its environment's KeyValueStore (CloudFront: the store's one key)."""
    hosted = cdn.env_of_bucket(project, bucket)
    if hosted is not None:
        return Published(None, cdn.live_release(project, hosted), False)
    return publish.read_published(project, bucket)


def add_new_files(
    project: Project,
    bucket: str,
    files: list[SiteFile],
    release_id: str,
    stop: threading.Event,
    added: list[str],
    shown: Published | None = None,
) -> Prior | None:
    """deploy's early upload of the files nothing links to yet (see publish.add_new_files;
    with CloudFront, the release's own prefix, which nothing serves before the switch)."""
    if cdn.env_of_bucket(project, bucket) is not None:
        hosting.add_release_files(project, bucket, files, release_id, stop, added)
        return None
    return publish.add_new_files(project, bucket, files, release_id, stop, added, shown)
