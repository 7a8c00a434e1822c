"""TencentCosSource under the mocks: bucket, function package, triggers, destinations, relay."""

import hashlib
import json
import re
from pathlib import Path

import pulumi
import pytest

from components import TencentCosSource
from tests.components.helpers import names_by_type, urn_parent_type
from tests.pulumi_mocks import DEFAULT_APP_ID, is_secret, plain_strings

BROKER = "http://broker-ingress.knative-eventing.svc.cluster.local/ce/default"
SUPPLIED = "whsec_" + "A" * 43 + "="


@pytest.fixture
def base(tmp_path):
    return {"region": "ap-guangzhou", "bucket_name": "uploads", "package_dir": str(tmp_path)}


def _source(base, **overrides):
    args = {**base, **overrides}
    package_dir = args.pop("package_dir")
    return TencentCosSource("cos-source", args, package_dir=package_dir)


def test_sink_mode_declares_bucket_and_function_only(pulumi_mocks, base):
    pulumi_mocks.run(lambda: _source(base, sink_url="https://sink.example/"))
    component = pulumi_mocks.one("cloudevents-connectors:index:TencentCosSource")
    assert names_by_type(pulumi_mocks, component.urn) == {
        ("tencentcloud:Cos/bucket:Bucket", "cos-source-bucket"),
        ("tencentcloud:Scf/function:Function", "cos-source-function"),
        (
            "tencentcloud:Scf/functionEventInvokeConfig:FunctionEventInvokeConfig",
            "cos-source-invoke-config",
        ),
    }
    for child in pulumi_mocks.children_of(component.urn):
        assert urn_parent_type(child.urn) == component.typ, child.urn


def test_bucket_is_named_with_the_app_id_private_and_encrypted(pulumi_mocks, base):
    source = pulumi_mocks.run(lambda: _source(base, sink_url="https://sink.example/"))
    bucket = pulumi_mocks.one("tencentcloud:Cos/bucket:Bucket")
    assert bucket.inputs["bucket"] == f"uploads-{DEFAULT_APP_ID}"
    assert bucket.inputs["acl"] == "private"
    assert bucket.inputs["encryptionAlgorithm"] == "AES256"
    assert ("tencentcloud:User/getInfo:getInfo", {}) in pulumi_mocks.invokes
    assert pulumi_mocks.value(source.bucket_name) == f"uploads-{DEFAULT_APP_ID}"


def test_given_app_id_skips_the_lookup_and_existing_bucket_is_not_managed(pulumi_mocks, base):
    pulumi_mocks.run(
        lambda: _source(
            base, app_id="1300000001", create_bucket=False, sink_url="https://sink.example/"
        )
    )
    assert pulumi_mocks.invokes == []
    assert pulumi_mocks.of_type("tencentcloud:Cos/bucket:Bucket") == []
    function = pulumi_mocks.one("tencentcloud:Scf/function:Function")
    assert {t["name"] for t in function.inputs["triggers"]} == {"uploads-1300000001"}


def test_function_settings_and_package_carries_its_content_hash(pulumi_mocks, base):
    pulumi_mocks.run(
        lambda: _source(
            base,
            sink_url="https://sink.example/",
            function={
                "name": "cos-events",
                "namespace": "ingest",
                "memory_mb": 256,
                "timeout_seconds": 60,
            },
            debug=True,
        )
    )
    function = pulumi_mocks.one("tencentcloud:Scf/function:Function")
    inputs = function.inputs
    assert (inputs["name"], inputs["namespace"]) == ("cos-events", "ingest")
    assert (inputs["runtime"], inputs["handler"]) == ("Python3.10", "index.main_handler")
    assert (inputs["memSize"], inputs["timeout"]) == (256.0, 60.0)
    package = Path(inputs["zipFile"])
    assert package.parent == Path(base["package_dir"])
    assert inputs["enablePublicNet"] is True  # the sink is on the internet
    assert "vpcId" not in inputs
    assert (
        inputs["description"] == "Turns COS notifications into CloudEvents. cloudevents connectors"
    )
    match = re.fullmatch(r"tencent-cos-source-([0-9a-f]{16})\.zip", package.name)
    assert match, package.name
    assert hashlib.sha256(package.read_bytes()).hexdigest()[:16] == match.group(1)
    env = inputs["environment"]
    assert not is_secret(env)  # nothing secret in sink mode
    assert env == {
        "FUNCTION_NAME": "cos-events",
        "DEBUG_MODE": "true",
        "K_SINK": "https://sink.example/",
    }


@pytest.mark.parametrize(
    ("events", "prefix", "suffix"),
    [
        (["cos:ObjectCreated:*"], "", ""),
        (["cos:ObjectCreated:Put", "cos:ObjectCreated:Post"], "in/", ""),
        (["cos:ObjectCreated:*", "cos:ObjectRemove:*", "cos:ObjectRestore:Completed"], "", ".jpg"),
    ],
)
def test_one_trigger_per_event_with_the_filter(pulumi_mocks, base, events, prefix, suffix):
    source = pulumi_mocks.run(
        lambda: _source(
            base, sink_url="https://sink.example/", events=events, prefix=prefix, suffix=suffix
        )
    )
    triggers = pulumi_mocks.one("tencentcloud:Scf/function:Function").inputs["triggers"]
    assert [json.loads(t["triggerDesc"]) for t in triggers] == [
        {"event": e, "filter": {"Prefix": prefix, "Suffix": suffix}} for e in events
    ]
    for trigger in triggers:
        assert trigger["type"] == "cos"
        assert trigger["cosRegion"] == "ap-guangzhou"
        # The provider appends .cos.<region>.myqcloud.com to the name itself.
        assert trigger["name"] == f"uploads-{DEFAULT_APP_ID}"
    assert pulumi_mocks.value(source.trigger_descriptions) == [t["triggerDesc"] for t in triggers]


def test_gateway_destination(pulumi_mocks, base):
    pulumi_mocks.run(
        lambda: _source(base, gateway={"target": "10.0.0.5:8081", "eventbus": "cos-events"})
    )
    env = pulumi_mocks.one("tencentcloud:Scf/function:Function").inputs["environment"]
    assert env["EVENT_GATEWAY"] == "10.0.0.5:8081"
    assert env["VANUS_EVENTBUS"] == "cos-events"
    assert "K_SINK" not in env
    assert not [r for r in pulumi_mocks.resources if r.typ.startswith("kubernetes:")]


def test_relay_wiring(pulumi_mocks, base):
    source = pulumi_mocks.run(
        lambda: _source(base, relay={"sink_url": BROKER, "runtime": {"namespace": "ce"}})
    )
    component = pulumi_mocks.one("cloudevents-connectors:index:TencentCosSource")
    assert names_by_type(pulumi_mocks, component.urn) == {
        ("tencentcloud:Cos/bucket:Bucket", "cos-source-bucket"),
        ("tencentcloud:Scf/function:Function", "cos-source-function"),
        (
            "tencentcloud:Scf/functionEventInvokeConfig:FunctionEventInvokeConfig",
            "cos-source-invoke-config",
        ),
        ("random:index/randomBytes:RandomBytes", "cos-source-relay-signing-key"),
        ("kubernetes:core/v1:Secret", "cos-source-relay-signing-secret"),
        ("cloudevents-connectors:index:ContainerRuntime", "cos-source-relay"),
        ("kubernetes:apps/v1:Deployment", "cos-source-relay-deployment"),
        ("kubernetes:core/v1:Service", "cos-source-relay-service"),
        ("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "cos-source-relay-hpa"),
        ("kubernetes:policy/v1:PodDisruptionBudget", "cos-source-relay-pdb"),
    }
    key = pulumi_mocks.one("random:index/randomBytes:RandomBytes")
    assert key.inputs == {"length": 32.0}
    generated = "whsec_" + key.outputs["base64"]["value"]

    secret = pulumi_mocks.one("kubernetes:core/v1:Secret")
    assert is_secret(secret.inputs["stringData"])
    assert secret.plain_inputs["stringData"] == {"signing-secret": generated}

    service = pulumi_mocks.one("kubernetes:core/v1:Service")
    assert service.inputs["spec"]["type"] == "LoadBalancer"
    deployment = pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "runtime.relay"]
    env = {e["name"]: e for e in container["env"]}
    assert env["K_SINK"]["value"] == BROKER
    # Auto-named: a new signing secret replaces the Secret under a new name, and the pod template
    # follows it, so the relay's pods roll onto the secret the function signs with.
    assert "name" not in secret.inputs["metadata"]
    assert env["RELAY_SIGNING_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": secret.outputs["metadata"]["name"],
        "key": "signing-secret",
    }

    function = pulumi_mocks.one("tencentcloud:Scf/function:Function")
    assert is_secret(function.inputs["environment"])  # the signing secret makes it all secret
    environment = function.plain_inputs["environment"]
    assert environment["K_SINK"] == "http://203.0.113.10/"
    assert environment["SINK_SIGNING_SECRET"] == generated
    assert pulumi_mocks.value(source.relay_url) == "http://203.0.113.10/"
    for r in pulumi_mocks.resources:
        assert generated not in set(plain_strings(r.inputs)), r.urn


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("hunter2", "must hold at least 16 bytes of key"),  # valid base64 of 5 bytes
        ("whsec_not base64!", "must be whsec_<base64>"),
        ("whsec_c2hvcnQ=", "must hold at least 16 bytes of key"),
    ],
)
def test_a_malformed_supplied_secret_fails_without_showing_it(pulumi_mocks, base, secret, problem):
    # The relay and the function would both refuse it at start-up: the deployment fails instead,
    # by the relay's own decoder, and the message never holds the secret.
    relay = {"sink_url": BROKER, "signing_secret": pulumi.Output.secret(secret)}
    with pytest.raises(Exception, match=rf"relay\.signing_secret: {re.escape(problem)}") as caught:
        pulumi_mocks.run(lambda: _source(base, relay=relay))
    assert secret.removeprefix("whsec_") not in str(caught.value)


def test_relay_with_public_url_and_supplied_secret(pulumi_mocks, base):
    source = pulumi_mocks.run(
        lambda: _source(
            base,
            relay={
                "sink_url": BROKER,
                "public_url": "https://relay.example.com/",
                "signing_secret": pulumi.Output.secret(SUPPLIED),
            },
        )
    )
    assert pulumi_mocks.of_type("random:index/randomBytes:RandomBytes") == []
    assert pulumi_mocks.one("kubernetes:core/v1:Service").inputs["spec"]["type"] == "ClusterIP"
    function = pulumi_mocks.one("tencentcloud:Scf/function:Function")
    assert function.plain_inputs["environment"]["K_SINK"] == "https://relay.example.com/"
    assert function.plain_inputs["environment"]["SINK_SIGNING_SECRET"] == SUPPLIED
    for r in pulumi_mocks.resources:
        assert SUPPLIED not in set(plain_strings(r.inputs)), r.urn
    assert pulumi_mocks.value(source.relay_url) == "https://relay.example.com/"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({}, "sink_url"),
        ({"sink_url": "https://s/", "gateway": {"target": "h:1", "eventbus": "e"}}, "sink_url"),
        ({"sink_url": "https://s/", "bucket_name": "UPLOADS"}, "bucket_name"),
        ({"sink_url": "https://s/", "suffix": "jpg"}, "suffix"),
        ({"sink_url": "https://s/", "events": ["cos:ObjectCreated:Upload"]}, "events"),
        (
            {"sink_url": "https://s/", "events": ["cos:ObjectCreated:*", "cos:ObjectCreated:Put"]},
            "events",
        ),
        ({"sink_url": "https://s/", "function": {"memory_mb": 100}}, "function.memory_mb"),
        ({"sink_url": "https://s/", "app_id": "abc"}, "app_id"),
        ({"relay": {"sink_url": BROKER, "signing_secret": SUPPLIED}}, "relay.signing_secret"),
        (
            {"relay": {"sink_url": BROKER, "runtime": {"min_replicas": 0}}},
            "relay.runtime.min_replicas",
        ),
    ],
)
def test_invalid_arguments_raise_before_anything_is_registered(
    pulumi_mocks, base, overrides, field
):
    with pytest.raises(ValueError, match=f"^{field}: "):
        pulumi_mocks.run(lambda: _source(base, **overrides))
    assert pulumi_mocks.resources == []
    assert pulumi_mocks.invokes == []


def test_invoke_config_sets_retries_and_event_age(pulumi_mocks, base):
    pulumi_mocks.run(
        lambda: _source(
            base,
            sink_url="https://sink.example/",
            function={"retry_attempts": 1, "max_event_age_seconds": 3600},
        )
    )
    config = pulumi_mocks.one(
        "tencentcloud:Scf/functionEventInvokeConfig:FunctionEventInvokeConfig"
    )
    assert config.inputs == {
        "functionName": "cloudevents-connectors-dev-cos-source",
        "namespace": "default",
        "asyncTriggerConfig": {"retryConfigs": [{"retryNum": 1.0}], "msgTtl": 3600.0},
    }
    function = pulumi_mocks.one("tencentcloud:Scf/function:Function")
    assert function.urn in config.dependencies


def test_vpc_placement_may_turn_public_access_off(pulumi_mocks, base):
    vpc = {"vpc_id": "vpc-1a2b3c4d", "subnet_id": "subnet-5e6f7a8b"}
    pulumi_mocks.run(
        lambda: _source(
            base,
            gateway={"target": "10.0.0.5:8081", "eventbus": "e"},
            function={"vpc": vpc, "public_network": False},
        )
    )
    inputs = pulumi_mocks.one("tencentcloud:Scf/function:Function").inputs
    assert (inputs["vpcId"], inputs["subnetId"], inputs["enablePublicNet"]) == (
        "vpc-1a2b3c4d",
        "subnet-5e6f7a8b",
        False,
    )


@pytest.mark.parametrize("force", [True, False])
def test_force_destroy_cleans_the_created_bucket(pulumi_mocks, base, force):
    pulumi_mocks.run(lambda: _source(base, sink_url="https://s.example/", force_destroy=force))
    assert pulumi_mocks.one("tencentcloud:Cos/bucket:Bucket").inputs["forceClean"] is force


def test_default_code_path_is_home_relative_and_the_zip_is_written_there(
    pulumi_mocks, tmp_path, monkeypatch
):
    monkeypatch.setenv("HOME", str(tmp_path))
    source = pulumi_mocks.run(
        lambda: TencentCosSource(
            "cos-source",
            {"region": "ap-guangzhou", "bucket_name": "uploads", "sink_url": "https://s.example/"},
        )
    )
    zip_file = pulumi_mocks.one("tencentcloud:Scf/function:Function").inputs["zipFile"]
    assert re.fullmatch(
        r"~/\.cache/cloudevents-connectors/tencent-cos-source-[0-9a-f]{16}\.zip", zip_file
    )
    assert Path(zip_file).expanduser().is_file()
    assert pulumi_mocks.value(source.code_path) == zip_file


def test_package_dir_is_a_python_keyword_not_an_argument(pulumi_mocks, tmp_path):
    # An internal knob: kept out of the Args (and so out of the multi-language schema).
    args = {"region": "ap-guangzhou", "bucket_name": "uploads", "sink_url": "https://s/"}
    with pytest.raises(ValueError, match=r"^package_dir: unknown argument"):
        pulumi_mocks.run(
            lambda: TencentCosSource("cos-source", {**args, "package_dir": str(tmp_path)})
        )
    assert pulumi_mocks.resources == []
