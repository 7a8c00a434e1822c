"""`make demo`: both connectors chained on this machine, no cloud account needed.

    COS notification -> SCF handler (from its built zip) -> relay (Standard Webhooks signature)
        -> OSS target -> local object-store emulator

Starts the three services as child processes on ephemeral 127.0.0.1 ports, invokes the function
with the seed's sample COS notification plus three more records, shows every object that landed
in the emulated OSS bucket and the OSS target's response event, and ends with a one-line verdict
(exit 0 on `demo: OK`, 1 on `demo: FAILED`). The children are stopped whatever happens (Ctrl-C too).
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.chain import (  # noqa: E402 - the repository root is on sys.path only now
    BUCKET,
    SEED_CURL_BODY,
    SEED_CURL_HEADERS,
    Chain,
    ChainError,
    function_python,
    invoke_function,
    post,
    sample_notification,
    unpack_function,
    without_credentials,
)


class DemoFailed(Exception):
    pass


def say(message: str = "") -> None:
    print(message, flush=True)


def step(title: str) -> None:
    say()
    say(f"== {title}")


def check(condition: bool, reason: str) -> None:
    if not condition:
        raise DemoFailed(reason)


def show_object(chain: Chain, key: str) -> None:
    stored = chain.object(key)
    say(f"  object {stored.key}")
    say(f"    content type  {stored.content_type}")
    for name, value in sorted(stored.metadata.items()):
        say(f"    x-oss-meta-{name}: {value}")
    try:
        content = json.dumps(json.loads(stored.body), indent=2, ensure_ascii=False)
    except ValueError:
        content = repr(stored.body)
    say("    content:")
    for line in content.splitlines():
        say(f"      {line}")


def run_demo() -> int:
    started = time.monotonic()
    say("demo: COS notification -> SCF handler (built zip) -> relay -> OSS target -> emulated OSS")
    step("starting the services (127.0.0.1, ephemeral ports)")
    with Chain(on_progress=lambda message: say(f"  {message}")) as chain:
        with tempfile.TemporaryDirectory(prefix="cos-function-") as temp:
            package, code_dir = unpack_function(Path(temp))
            say(f"  function package       {package.name} (unpacked, run with {function_python()})")

            notification = sample_notification()
            records = notification["Records"]
            step(f"invoking index.main_handler: {len(records)} COS records, signed for the relay")
            for record in records:
                say(f"  {record['event']['eventName']:<45} {record['cos']['cosObject']['key']}")
            invocation = invoke_function(
                code_dir, notification, chain.relay.url, chain.signing_secret
            )
            for line in invocation.logs:
                if line.get("msg") in ("event delivered", "event not delivered"):
                    say(
                        f"  {line['msg']}: id={line['id']} status={line.get('status')} "
                        f"attempts={line.get('attempts')} subject={line.get('subject')}"
                    )
            check(invocation.error is None, f"the handler raised {invocation.error}")
            ids = invocation.result["ids"]
            check(len(ids) == len(records), f"{len(records)} records gave {len(ids)} events")

            step(f"objects in the emulated OSS bucket {BUCKET}")
            keys = [entry["key"] for entry in chain.objects()]
            check(sorted(keys) == sorted(ids), f"bucket holds {keys}, expected {sorted(ids)}")
            for event_id, record in zip(ids, records, strict=True):
                show_object(chain, event_id)
                stored = chain.object(event_id)
                check(
                    stored.content_type == "application/json",
                    f"{event_id} stored as {stored.content_type}",
                )
                check(
                    json.loads(stored.body) == {"Records": [without_credentials(record)]},
                    f"{event_id} does not hold its COS record",
                )
                check(
                    b"q-sign-algorithm" not in stored.body,
                    f"{event_id} carries the uploader's Authorization header",
                )

            step("re-delivering the same notification (as SCF's retry would)")
            again = invoke_function(code_dir, notification, chain.relay.url, chain.signing_secret)
            check(again.error is None, f"the second invocation raised {again.error}")
            check(again.result["ids"] == ids, "the same records got different ids")
            count = len(chain.objects())
            check(count == len(ids), f"the bucket now holds {count} objects, not {len(ids)}")
            say(f"  same {len(ids)} ids, still {count} objects: duplicates overwrite, never add")

        step("response event of the OSS target (the seed's curl example, sent directly)")
        say("  the relay answers the function with 202 and keeps the target's reply to itself,")
        say(f"  so here is the seed's test event POSTed to the OSS target at {chain.target.url}")
        for name, value in SEED_CURL_HEADERS.items():
            say(f"    > {name}: {value}")
        say(f"    > {SEED_CURL_BODY.decode()}")
        reply = post(chain.target.url, SEED_CURL_BODY, SEED_CURL_HEADERS)
        say(f"    < HTTP {reply.status}")
        for name, value in sorted(reply.headers.items()):
            if name.startswith("ce-") or name == "content-type":
                say(f"    < {name}: {value}")
        say(f"    < {reply.body.decode(errors='replace')}")
        check(reply.status == 200, f"the OSS target answered {reply.status}")
        check(
            reply.headers.get("ce-type") == "any.event.type.response",
            f"response ce-type is {reply.headers.get('ce-type')}",
        )
        seed_id = SEED_CURL_HEADERS["Ce-Id"]
        check(json.loads(reply.body).get("key") == seed_id, "the response names another key")
        show_object(chain, seed_id)
        stored = chain.object(seed_id)
        check(
            stored.body == SEED_CURL_BODY and stored.content_type == "application/json",
            "the curl event was not stored as sent",
        )

        step("stopping the services")
    stored_count = len(ids) + 1
    say()
    say(
        f"demo: OK — {stored_count} events stored and verified "
        f"({len(ids)} COS records through the relay, 1 sent directly) "
        f"in {time.monotonic() - started:.1f} s"
    )
    return 0


def main() -> int:
    # SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C, so the children are stopped too.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return run_demo()
    except KeyboardInterrupt:
        say("demo: FAILED — interrupted (services stopped)")
        return 1
    except (DemoFailed, ChainError) as error:
        detail = str(error).splitlines() or [type(error).__name__]
        for line in detail[1:]:
            say(f"  | {line}")
        say(f"demo: FAILED — {detail[0]}")
        return 1
    except Exception as error:  # anything unforeseen still ends with the verdict line
        traceback.print_exc()
        say(f"demo: FAILED — {type(error).__name__}: {error}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())
