"""Tencent COS source: the SCF function (`index.main_handler`) that turns COS notifications into
CloudEvents. Its modules are flat siblings so the same files run from the function's zip root."""
