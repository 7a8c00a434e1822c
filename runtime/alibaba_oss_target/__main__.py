"""`python -m runtime.alibaba_oss_target`: CloudEvents over HTTP in, OSS objects out."""

from runtime.alibaba_oss_target.app import build_target
from runtime.alibaba_oss_target.settings import read_startup_settings
from runtime.receiver import main

if __name__ == "__main__":
    raise SystemExit(main("alibaba-oss-target", read_startup_settings, build_target))
