"""`python -m runtime.alibaba_oss_target`: CloudEvents over HTTP in, OSS objects out."""

from .app import build_target
from .settings import read_settings
from ..receiver import main

if __name__ == "__main__":
    raise SystemExit(main("alibaba-oss-target", read_settings, build_target))
