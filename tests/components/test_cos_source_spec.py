"""Pure rules of TencentCosSource: bucket names, trigger JSON per event and filter, arguments."""

import json

import pulumi
import pytest

from components import cos_source_spec as spec
from components.schema import validate
from components.tencent_cos_source import TencentCosSourceArgs

BASE = {"region": "ap-guangzhou", "bucket_name": "uploads", "sink_url": "https://sink.example/"}


def settings(name, args):
    """Through the schema first, as the component does: structure there, rules here."""
    return spec.cos_source_settings(
        name, validate(TencentCosSourceArgs, args), project="cloudevents-connectors", stack="dev"
    )


@pytest.mark.parametrize(
    ("name", "region", "valid"),
    [
        ("uploads", "ap-guangzhou", True),
        ("1-newproject", "ap-beijing", True),
        ("examplebucket-1", "ap-beijing", True),
        # The documented limit: 123456789012345678901-1250000000.cos.ap-beijing.myqcloud.com = 60.
        ("123456789012345678901", "ap-beijing", True),
        ("1234567890123456789012", "ap-beijing", False),
        ("Uploads", "ap-guangzhou", False),
        ("up_loads", "ap-guangzhou", False),
        ("-uploads", "ap-guangzhou", False),
        ("uploads-", "ap-guangzhou", False),
        ("up.loads", "ap-guangzhou", False),
        ("", "ap-guangzhou", False),
    ],
)
def test_bucket_names_as_tencent_checks_them(name, region, valid):
    if valid:
        assert spec.validate_bucket_name(name, region) == name
    else:
        with pytest.raises(ValueError, match=r"^bucket_name: "):
            spec.validate_bucket_name(name, region)


def test_too_long_name_says_how_much_room_there_is():
    with pytest.raises(ValueError, match="leaving 21 for the name"):
        spec.validate_bucket_name("1234567890123456789012", "ap-beijing")


@pytest.mark.parametrize(
    ("app_id", "valid"), [("1250000000", True), ("125000000", False), ("12500000001", False)]
)
def test_app_ids(app_id, valid):
    if valid:
        assert spec.validate_app_id(app_id) == app_id
    else:
        with pytest.raises(ValueError, match=r"^app_id: "):
            spec.validate_app_id(app_id)


@pytest.mark.parametrize("event", spec.COS_EVENTS)
@pytest.mark.parametrize(("prefix", "suffix"), [("", ""), ("in/", ""), ("", ".jpg"), ("a/", ".gz")])
def test_trigger_desc_per_event_and_filter(event, prefix, suffix):
    desc = spec.trigger_desc(event, prefix, suffix)
    assert json.loads(desc) == {"event": event, "filter": {"Prefix": prefix, "Suffix": suffix}}
    assert " " not in desc  # compact, as CreateTrigger takes it


def test_trigger_desc_exact_text():
    assert spec.trigger_desc("cos:ObjectCreated:*", "in/") == (
        '{"event":"cos:ObjectCreated:*","filter":{"Prefix":"in/","Suffix":""}}'
    )


def test_triggers_are_named_by_bucket_id_with_their_region():
    triggers = spec.triggers(
        "uploads-1250000000", "ap-guangzhou", ("cos:ObjectCreated:*", "cos:ObjectRemove:*"), "", ""
    )
    assert [t["name"] for t in triggers] == ["uploads-1250000000"] * 2
    assert {t["type"] for t in triggers} == {"cos"}
    assert {t["cos_region"] for t in triggers} == {"ap-guangzhou"}
    assert [json.loads(t["trigger_desc"])["event"] for t in triggers] == [
        "cos:ObjectCreated:*",
        "cos:ObjectRemove:*",
    ]


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([], "non-empty"),
        # A YAML scalar where a list belongs: reported as a string, not as unknown event 'c'.
        ("cos:ObjectCreated:*", "is the string 'cos:ObjectCreated:\\*', not a list"),
        (["cos:ObjectCreated:Upload"], "unknown COS event"),
        (["cos:ObjectCreated:Put", "cos:ObjectCreated:Put"], "twice"),
        (["cos:ObjectCreated:*", "cos:ObjectCreated:Put"], "overlaps cos:ObjectCreated:\\*"),
        (["cos:ObjectRemove:Delete", "cos:ObjectRemove:*"], "overlaps cos:ObjectRemove:\\*"),
    ],
)
def test_invalid_events(events, message):
    with pytest.raises(ValueError, match=f"^events: .*{message}"):
        spec.validate_events(events)


def test_distinct_groups_and_specific_events_combine():
    events = ["cos:ObjectCreated:Put", "cos:ObjectCreated:Post", "cos:ObjectRemove:*"]
    assert spec.validate_events(events) == tuple(events)


def _Secret():
    """A pulumi secret Output (the schema takes an Output for an Input field as is)."""
    return pulumi.Output.secret("whsec_c2VjcmV0")


RELAY = {"sink_url": "http://broker.ns.svc.cluster.local/"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"region": "Guangzhou"}, "region"),
        ({"bucket_name": "Bad"}, "bucket_name"),
        ({"app_id": "12"}, "app_id"),
        ({"create_bucket": False, "protect": True}, "protect"),
        ({"create_bucket": False, "versioning": True}, "versioning"),
        ({"function": {"name": "1starts-with-digit"}}, "function.name"),
        ({"function": {"name": "ends-with-"}}, "function.name"),
        ({"function": {"namespace": "bad ns"}}, "function.namespace"),
        ({"function": {"memory_mb": 100}}, "function.memory_mb"),
        ({"function": {"memory_mb": 4096}}, "function.memory_mb"),
        # The SCF API takes 64, the provider's validator does not (multiples of 128 only).
        ({"function": {"memory_mb": 64}}, "function.memory_mb"),
        ({"region": "ap-guangzou"}, "region"),
        ({"region": "cn-hangzhou"}, "region"),
        ({"function": {"public_network": False}}, "function.public_network"),
        ({"function": {"vpc": {"vpc_id": "vpc-1a2b3c4d"}}}, "function.vpc.subnet_id"),
        (
            {"function": {"vpc": {"vpc_id": "vpc_1", "subnet_id": "subnet-1a2b3c4d"}}},
            "function.vpc.vpc_id",
        ),
        ({"function": {"retry_attempts": 3}}, "function.retry_attempts"),
        ({"function": {"retry_attempts": -1}}, "function.retry_attempts"),
        ({"function": {"max_event_age_seconds": 59}}, "function.max_event_age_seconds"),
        ({"function": {"max_event_age_seconds": 21601}}, "function.max_event_age_seconds"),
        ({"create_bucket": False, "force_destroy": True}, "force_destroy"),
        ({"function": {"timeout_seconds": 0}}, "function.timeout_seconds"),
        ({"function": {"timeout_seconds": 901}}, "function.timeout_seconds"),
        ({"debug": "yes"}, "debug"),
        ({"suffix": "jpg"}, "suffix"),
        ({"prefix": "/in"}, "prefix"),
        ({"events": ["cos:Nope"]}, "events"),
        ({"sink_url": None}, "sink_url"),
        ({"gateway": {"target": "1.2.3.4:8080", "eventbus": "eb"}}, "sink_url"),
        ({"sink_url": "ftp://x"}, "sink_url"),
        ({"sink_url": "https://user:pw@sink/"}, "sink_url"),
        ({"sink_url": None, "gateway": {"eventbus": "eb"}}, "gateway.target"),
        ({"sink_url": None, "gateway": {"target": "h:1", "eventbus": ""}}, "gateway.eventbus"),
        (
            {"sink_url": None, "gateway": {"target": "h:1", "eventbus": "e", "api": "v2"}},
            "gateway.api",
        ),
        (
            {"sink_url": None, "gateway": {"target": "h:1", "eventbus": "e", "namespace": "n"}},
            "gateway.namespace",
        ),
        ({"sink_url": None, "gateway": {"target": "h:1", "eventbus": "e", "x": 1}}, "gateway.x"),
        ({"sink_url": None, "relay": {}}, "relay.sink_url"),
        ({"sink_url": None, "relay": {**RELAY, "public_url": "nope"}}, "relay.public_url"),
        (
            {"sink_url": None, "relay": {**RELAY, "signing_secret": "whsec_plain"}},
            "relay.signing_secret",
        ),
        (
            {"sink_url": None, "relay": {**RELAY, "runtime": {"mode": "knative"}}},
            "relay.public_url",
        ),
        (
            {"sink_url": None, "relay": {**RELAY, "runtime": {"replicas": 2}}},
            "relay.runtime.replicas",
        ),
        (
            {"sink_url": None, "relay": {**RELAY, "runtime": {"min_replicas": 0}}},
            "relay.runtime.min_replicas",
        ),
        ({"delivery_timeout_seconds": 0}, "delivery_timeout_seconds"),
        ({"delivery_retry_budget_seconds": 30}, "delivery_retry_budget_seconds"),
        ({"bucket": "x"}, "bucket"),
    ],
)
def test_invalid_arguments_name_the_field(overrides, field):
    args = {k: v for k, v in {**BASE, **overrides}.items() if v is not None}
    with pytest.raises(ValueError, match=rf"^{field}: "):
        settings("cos-source", args)


def test_defaults_fix_the_upstream_function_limits():
    s = settings("cos-source", BASE)
    assert s.events == ("cos:ObjectCreated:*",)
    # The stack (and project) in the default: two stacks in one account never share a function.
    assert (s.function_name, s.function_namespace) == (
        "cloudevents-connectors-dev-cos-source",
        "default",
    )
    # Upstream ran with SCF's 3 s default timeout and 64 MB.
    assert (s.timeout_seconds, s.memory_mb) == (30, 128)
    assert s.relay is None and s.gateway is None


@pytest.mark.parametrize(
    ("destination", "env"),
    [
        ({"sink_url": "https://sink.example/"}, {"K_SINK": "https://sink.example/"}),
        (
            {"gateway": {"target": "10.0.0.5:8081", "eventbus": "cos"}},
            {"EVENT_GATEWAY": "10.0.0.5:8081", "VANUS_EVENTBUS": "cos", "VANUS_API": "gateway"},
        ),
        (
            {"gateway": {"target": "http://gw:8081", "eventbus": "cos", "api": "namespaces"}},
            {
                "EVENT_GATEWAY": "http://gw:8081",
                "VANUS_EVENTBUS": "cos",
                "VANUS_API": "namespaces",
                "VANUS_NAMESPACE": "default",
            },
        ),
        ({"relay": RELAY}, {}),
    ],
)
def test_function_env_per_destination(destination, env):
    args = {"region": "ap-guangzhou", "bucket_name": "uploads", **destination, "debug": True}
    s = settings("src", args)
    assert spec.function_env(s) == {
        "FUNCTION_NAME": "cloudevents-connectors-dev-src",
        "DEBUG_MODE": "true",
        **env,
    }


def test_function_env_delivery_knobs():
    s = settings(
        "src", {**BASE, "delivery_timeout_seconds": 5, "delivery_retry_budget_seconds": 20}
    )
    env = spec.function_env(s)
    assert (env["DELIVERY_TIMEOUT_SECONDS"], env["DELIVERY_RETRY_BUDGET_SECONDS"]) == ("5", "20")
    assert env["DEBUG_MODE"] == "false"


def test_relay_settings_fill_the_default_image():
    s = settings("src", {**{k: v for k, v in BASE.items() if k != "sink_url"}, "relay": RELAY})
    assert s.relay.runtime == {"image": spec.DEFAULT_RELAY_IMAGE}
    assert not s.relay.supplied_secret


def test_function_description_uses_only_documented_characters():
    assert spec.DESCRIPTION_CHARACTERS.match(spec.FUNCTION_DESCRIPTION)
    # The old description, refused by the rule: parentheses and '-' are not documented.
    old = "Turns COS notifications into CloudEvents (cloudevents-connectors)"
    assert not spec.DESCRIPTION_CHARACTERS.match(old)


def test_missing_required_fields_say_is_required():
    for missing in ("region", "bucket_name"):
        args = {k: v for k, v in BASE.items() if k != missing}
        with pytest.raises(ValueError, match=rf"^{missing}: is required$"):
            settings("cos-source", args)


def test_network_and_retry_defaults():
    s = settings("cos-source", BASE)
    assert (s.public_network, s.vpc, s.retry_attempts, s.max_event_age_seconds) == (
        True,
        None,
        2,
        21600,
    )
    assert s.force_destroy is False
    vpc = {"vpc_id": "vpc-1a2b3c4d", "subnet_id": "subnet-5e6f7a8b"}
    s = settings("cos-source", {**BASE, "function": {"vpc": vpc, "public_network": False}})
    assert (s.public_network, s.vpc) == (False, spec.VpcSettings(**vpc))


def test_two_stacks_never_share_a_default_function_name():
    args = validate(TencentCosSourceArgs, BASE)
    names = {
        spec.cos_source_settings("cos-source", args, project="p", stack=stack).function_name
        for stack in ("dev", "prod")
    }
    assert names == {"p-dev-cos-source", "p-prod-cos-source"}


@pytest.mark.parametrize(
    ("project", "stack", "expected"),
    [
        ("acme", "team/dev", "acme-team-dev-cos-source"),
        ("9lives", "dev", "lives-dev-cos-source"),  # must start with a letter
        ("a" * 60, "prod", "a" * 51 + "-"),  # over 60: the start plus a hash
    ],
)
def test_default_function_name_follows_scfs_rule(project, stack, expected):
    name = spec.default_function_name(project, stack, "cos-source")
    assert name.startswith(expected)
    assert spec._FUNCTION_NAME.match(name) and len(name) <= 60
