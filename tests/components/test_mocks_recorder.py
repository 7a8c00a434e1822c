"""The Pulumi mocks recorder records what a program registers, faithfully enough to assert on."""

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import pytest
import tencentcloud_iac_pulumi as tencentcloud

from tests.pulumi_mocks import (
    DEFAULT_APP_ID,
    is_secret,
    plain_strings,
    project_name,
    secret,
    session_engine,
    unwrap,
)


class _Pair(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("test:index:Pair", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.key = random.RandomBytes(f"{name}-key", length=32, opts=child)
        self.secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata={"name": "pair", "namespace": "ns"},
            string_data={"token": self.key.base64},
            opts=child,
        )
        self.config = k8s.core.v1.ConfigMap(f"{name}-config", data={"replicas": "2"}, opts=child)
        self.register_outputs({"secretName": self.secret.metadata.name})


def _program():
    provider = k8s.Provider("cluster", context="kind-dev", namespace="ns")
    pair = _Pair("pair", opts=pulumi.ResourceOptions(providers=[provider]))
    pulumi.export("secretName", pair.secret.metadata.name)
    pulumi.export("key", pair.key.base64)
    return pair


def test_records_type_name_inputs_parent_and_provider(pulumi_mocks):
    pair = pulumi_mocks.run(_program)

    component = pulumi_mocks.one("test:index:Pair")
    assert component.custom is False
    # Mocks put the Stack type in top-level URNs (the real engine does not).
    assert component.urn == (
        f"urn:pulumi:dev::{project_name()}::pulumi:pulumi:Stack$test:index:Pair::pair"
    )
    assert set(component.providers) == {"kubernetes"}

    secret_res = pulumi_mocks.named("pair-secret")
    assert secret_res.custom is True
    assert secret_res.typ == "kubernetes:core/v1:Secret"
    assert secret_res.parent == component.urn
    assert secret_res.urn.endswith("test:index:Pair$kubernetes:core/v1:Secret::pair-secret")
    assert secret_res.provider.startswith(pulumi_mocks.one("pulumi:providers:kubernetes").urn)
    assert secret_res.inputs["metadata"] == {"name": "pair", "namespace": "ns"}

    key = pulumi_mocks.one("random:index/randomBytes:RandomBytes")
    assert key.inputs == {"length": 32.0}  # numbers cross the wire as floats
    assert {r.name for r in pulumi_mocks.children_of(component.urn)} == {
        "pair-key",
        "pair-secret",
        "pair-config",
    }
    assert pulumi_mocks.value(pair.config.metadata.name).startswith("pair-config-")


def test_secret_outputs_arrive_wrapped_and_stay_secret(pulumi_mocks):
    pair = pulumi_mocks.run(_program)

    string_data = pulumi_mocks.named("pair-secret").inputs["stringData"]
    assert is_secret(string_data)
    token = unwrap(string_data)["token"]
    assert token and token not in set(plain_strings(pulumi_mocks.named("pair-secret").inputs))
    assert pulumi_mocks.is_secret_output(pair.key.base64)
    assert pulumi_mocks.value(pair.key.base64) == token


def test_plain_strings_skips_only_secret_wrapped_values():
    value = {"a": "visible", "b": secret("hidden"), "c": [secret({"d": "deep"}), "also"]}
    assert sorted(plain_strings(value)) == ["a", "also", "b", "c", "visible"]
    assert unwrap(value) == {"a": "visible", "b": "hidden", "c": [{"d": "deep"}, "also"]}


def test_exports_and_reset(pulumi_mocks):
    pulumi_mocks.run(_program)
    exports = pulumi_mocks.exports()
    assert exports["secretName"] == "pair"
    assert exports["key"]

    pulumi_mocks.reset()
    assert pulumi_mocks.resources == []
    assert pulumi_mocks.exports() == {}


def test_invokes_answer_the_tencent_app_id(pulumi_mocks):
    info = pulumi_mocks.run(lambda: tencentcloud.user.get_info())
    assert info.app_id == DEFAULT_APP_ID
    assert pulumi_mocks.invokes == [("tencentcloud:User/getInfo:getInfo", {})]


def test_config_uses_the_project_name_from_pulumi_yaml(pulumi_mocks):
    pulumi.runtime.set_all_config({f"{project_name()}:greeting": "hello"})
    assert pulumi_mocks.run(lambda: pulumi.Config().get("greeting")) == "hello"
    assert pulumi.get_project() == project_name() == "cloudevents-connectors"


def test_one_and_named_fail_loudly_on_zero_or_many(pulumi_mocks):
    pulumi_mocks.run(lambda: [_Pair("first"), _Pair("second")])
    with pytest.raises(AssertionError, match="found 2"):
        pulumi_mocks.one("kubernetes:core/v1:Secret")
    with pytest.raises(AssertionError, match="found 0"):
        pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    first = pulumi_mocks.named("first")
    assert len(pulumi_mocks.descendants_of(first.urn)) == 3


def test_one_engine_per_session(pulumi_mocks):
    assert pulumi_mocks is session_engine()
