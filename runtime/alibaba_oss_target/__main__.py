"""`python -m runtime.alibaba_oss_target`: CloudEvents over HTTP in, OSS objects out."""

from __future__ import annotations

from runtime.alibaba_oss_target.app import build_target
from runtime.alibaba_oss_target.settings import read_settings
from runtime.receiver import configure_logging, load_or_exit, run


def main() -> int:
    settings = load_or_exit(read_settings, program="alibaba-oss-target")
    configure_logging(settings.server.log_level)
    receiver, uploader = build_target(settings)
    return run(
        receiver,
        port=settings.server.port,
        drain_timeout=settings.server.drain_timeout_seconds,
        on_shutdown=[uploader.close],
    )


if __name__ == "__main__":
    raise SystemExit(main())
