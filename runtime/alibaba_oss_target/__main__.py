"""`python -m runtime.alibaba_oss_target`: CloudEvents over HTTP in, OSS objects out."""

from ..receiver import main
from .app import build_target
from .settings import read_startup_settings

if __name__ == "__main__":
    raise SystemExit(main("alibaba-oss-target", read_startup_settings, build_target))
