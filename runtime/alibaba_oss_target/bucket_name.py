"""The one OSS bucket-name rule, shared by the runtime (OSS_BUCKET) and the Pulumi component.

Pure and standard-library only, so the image carries it and the component imports it. The rule is
Alibaba's (OSS docs, "Bucket naming conventions"): 3-63 characters; lowercase letters, digits and
hyphens only; starting and ending with a lowercase letter or a digit. Consecutive hyphens are
allowed.
"""

import re

RULE = "3-63 lowercase letters, digits or '-', starting and ending with a letter or digit"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def bucket_name_problem(name: object) -> str | None:
    """None when `name` is a valid OSS bucket name, else why not (a phrase naming the rule)."""
    if not isinstance(name, str) or not _BUCKET.fullmatch(name):
        return f"{name!r} is not a valid OSS bucket name ({RULE})"
    return None
