"""`python -m runtime.relay`: signed CloudEvents in, the same events out to `K_SINK`."""

from __future__ import annotations

from runtime.receiver import configure_logging, load_or_exit, run
from runtime.relay.app import build_relay
from runtime.relay.settings import read_settings


def main() -> int:
    settings = load_or_exit(read_settings, program="relay")
    configure_logging(settings.server.log_level)
    receiver, forwarder = build_relay(settings)
    return run(
        receiver,
        port=settings.server.port,
        drain_timeout=settings.server.drain_timeout_seconds,
        on_shutdown=[forwarder.close],
    )


if __name__ == "__main__":
    raise SystemExit(main())
