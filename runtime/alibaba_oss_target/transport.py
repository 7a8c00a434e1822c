"""An oss2 `Session` over a urllib3 connection pool (oss2's `Bucket(session=...)` extension point).

oss2 still builds, signs and sends every request, maps errors to its exceptions and parses results;
only the HTTP layer underneath changes. requests spends about half of plain oss2's CPU on a small
PUT merging session settings, cookies, hooks and runtime protocol checks (and scanning the
environment for proxies) before urllib3 does the actual work; this session goes to urllib3 directly.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import certifi
import oss2.http
import urllib3
from oss2.exceptions import RequestError


class _Reply:
    """The part of `requests.Response` that `oss2.http.Response` reads."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self.status_code = response.status
        self.headers = response.headers  # HTTPHeaderDict: case-insensitive, like requests'
        self._body = response.data

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        for start in range(0, len(self._body), chunk_size):
            yield self._body[start : start + chunk_size]


class Urllib3Session:
    """Thread-safe; keeps up to `pool_size` connections per host alive for reuse."""

    def __init__(self, *, pool_size: int, proxy: str | None = None) -> None:
        options = {
            "num_pools": 4,
            "maxsize": pool_size,
            "block": False,
            "retries": False,  # the uploader retries, with backoff and a budget
            "ca_certs": certifi.where(),  # the CA bundle requests would use
        }
        self._pool = (
            urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        )

    def do_request(self, req: oss2.http.Request, timeout: float) -> oss2.http.Response:
        url = req.url
        if req.params:
            pairs = [(name, value) for name, value in req.params.items() if value is not None]
            url += "?" + urllib.parse.urlencode(pairs)
        headers = {name: value for name, value in req.headers.items() if value is not None}
        try:
            # PUT and error answers are small: read them whole, so the connection goes back to
            # the pool at once.
            response = self._pool.urlopen(
                req.method,
                url,
                body=req.data,
                headers=headers,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                retries=False,
                redirect=False,
                preload_content=True,
            )
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise RequestError(error) from error
        return oss2.http.Response(_Reply(response))

    def close(self) -> None:
        self._pool.clear()
