"""`python -m runtime.relay`: signed CloudEvents in, the same events out to `K_SINK`."""

from ..receiver import main
from .app import build_relay
from .settings import read_settings

if __name__ == "__main__":
    raise SystemExit(main("relay", read_settings, build_relay))
