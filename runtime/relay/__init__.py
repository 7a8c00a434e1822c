"""The relay of the Tencent COS source: signed CloudEvents from the SCF function in, forwarded to
the in-cluster sink (`K_SINK`) in binary mode; acknowledged only once the sink has accepted them."""
