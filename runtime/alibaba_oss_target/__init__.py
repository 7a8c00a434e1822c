"""Alibaba OSS target: stores each CloudEvent as the object `OSS_KEY_PREFIX + id` in `OSS_BUCKET`.

Run with `python -m runtime.alibaba_oss_target`; settings in `settings.py`, HTTP contract in
`service.py` and `runtime.receiver`.
"""
