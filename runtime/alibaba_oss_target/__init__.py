"""Alibaba OSS target: stores each CloudEvent in `OSS_BUCKET` as the object `OSS_KEY_PREFIX` + the
key template (`{id}` by default; templates.py), or, with `BATCH_MAX_EVENTS` > 0, as a line of a
rolled NDJSON object (batching.py), answering each request only once its events are stored.

Run with `python -m runtime.alibaba_oss_target`; settings in `settings.py`, HTTP contract in
`service.py` and `runtime.receiver`.
"""
