"""Typed stack config: camelCase blocks -> component args, errors named as in the stack file."""

import pytest

from components.stack_config import KubernetesConfig, camel, parse_stack_config, snake

OSS = {"region": "cn-hangzhou", "bucketName": "acme-events"}
COS = {"region": "ap-guangzhou", "bucketName": "uploads", "sinkUrl": "https://sink.example/"}
SECRET = object()  # stands for a secret Output


def test_absent_or_empty_blocks_deploy_nothing():
    config = parse_stack_config({"kubernetes": {}, "ossTarget": {}, "cosSource": None})
    assert (config.oss_target, config.cos_source) == (None, None)
    assert config.kubernetes == KubernetesConfig()


def test_oss_target_block_becomes_component_args():
    config = parse_stack_config(
        {
            "kubernetes": {"namespace": "ce", "createNamespace": False, "context": "kind"},
            "ossTarget": {
                **OSS,
                "expirationDays": 7,
                "useInternalEndpoint": True,
                "runtime": {"minReplicas": 2, "maxReplicas": 3, "imagePullPolicy": "Always"},
            },
        }
    )
    assert config.kubernetes == KubernetesConfig("kind", None, "ce", False)
    assert config.oss_target == {
        "region": "cn-hangzhou",
        "bucket_name": "acme-events",
        "expiration_days": 7,
        "use_internal_endpoint": True,
        "runtime": {
            "min_replicas": 2,
            "max_replicas": 3,
            "image_pull_policy": "Always",
            "namespace": "ce",
        },
    }


def test_cos_source_block_maps_the_seed_function_keys():
    config = parse_stack_config(
        {
            "cosSource": {
                **{k: v for k, v in COS.items() if k != "sinkUrl"},
                "function": {
                    "name": "fn",
                    "namespace": "ns",
                    "memoryMb": 256,
                    "timeoutSeconds": 60,
                },
                "relay": {
                    "sinkUrl": "http://broker/",
                    "runtime": {"mode": "knative"},
                    "publicUrl": "https://r/",
                },
            }
        },
        {"cosSourceRelaySigningSecret": SECRET},
    )
    args = config.cos_source
    assert (args["function_name"], args["function_namespace"]) == ("fn", "ns")
    assert (args["memory_mb"], args["timeout_seconds"]) == (256, 60)
    assert args["relay"] == {
        "sink_url": "http://broker/",
        "public_url": "https://r/",
        "runtime": {"mode": "knative", "namespace": "cloudevents"},
        "signing_secret": SECRET,
    }


def test_supplied_access_key_pair():
    config = parse_stack_config(
        {"ossTarget": {**OSS, "accessKeyId": "LTAI5tAAAAAAAAAAAAAA"}},
        {"ossTargetAccessKeySecret": SECRET},
    )
    assert config.oss_target["access_key_secret"] is SECRET


@pytest.mark.parametrize(
    ("values", "secrets", "message"),
    [
        ({"kubernetes": {"cluster": "x"}}, {}, r"^kubernetes\.cluster: unknown key"),
        ({"kubernetes": {"namespace": "Bad_NS"}}, {}, r"^kubernetes\.namespace: "),
        ({"kubernetes": {"createNamespace": "yes"}}, {}, r"^kubernetes\.createNamespace: "),
        ({"ossTarget": "acme"}, {}, r"^ossTarget: must be an object"),
        ({"ossTarget": {**OSS, "bucket": "x"}}, {}, r"^ossTarget\.bucket: unknown key"),
        ({"ossTarget": {**OSS, "bucketName": "Bad"}}, {}, r"^ossTarget\.bucketName: "),
        (
            {"ossTarget": {**OSS, "kmsKeyId": "k"}},
            {},
            r"^ossTarget\.kmsKeyId: needs encryption KMS",
        ),
        (
            {"ossTarget": {**OSS, "runtime": {"minReplicas": 0}}},
            {},
            r"^ossTarget\.runtime\.minReplicas: ",
        ),
        (
            {"ossTarget": {**OSS, "runtime": {"namespace": "x"}}},
            {},
            r"^ossTarget\.runtime\.namespace: unknown key",
        ),
        (
            {"ossTarget": {**OSS, "accessKeyId": "LTAI5tAAAAAAAAAAAAAA"}},
            {},
            r"^ossTargetAccessKeySecret: required",
        ),
        (
            {"ossTarget": OSS},
            {"ossTargetAccessKeySecret": SECRET},
            r"^ossTargetAccessKeySecret: is set, but",
        ),
        ({}, {"ossTargetAccessKeySecret": SECRET}, r"^ossTargetAccessKeySecret: .*no ossTarget"),
        (
            {"cosSource": {**COS, "function": {"memory": 1}}},
            {},
            r"^cosSource\.function\.memory: unknown key",
        ),
        ({"cosSource": {**COS, "function": {"name": "9fn"}}}, {}, r"^cosSource\.function\.name: "),
        (
            {"cosSource": {**COS, "function": {"memoryMb": 100}}},
            {},
            r"^cosSource\.function\.memoryMb: ",
        ),
        ({"cosSource": {**COS, "suffix": "jpg"}}, {}, r"^cosSource\.suffix: "),
        (
            {"cosSource": {**COS, "gateway": {"target": "h:1", "eventbus": "e"}}},
            {},
            r"^cosSource\.sinkUrl: give exactly one",
        ),
        (
            {"cosSource": {**COS, "deliveryRetryBudgetSeconds": 31}},
            {},
            r"^cosSource\.deliveryRetryBudgetSeconds: ",
        ),
        (
            {"cosSource": COS},
            {"cosSourceRelaySigningSecret": SECRET},
            r"^cosSourceRelaySigningSecret: .*no relay",
        ),
        (
            {},
            {"cosSourceRelaySigningSecret": SECRET},
            r"^cosSourceRelaySigningSecret: .*no cosSource",
        ),
    ],
)
def test_errors_name_the_stack_file_path(values, secrets, message):
    with pytest.raises(ValueError, match=message):
        parse_stack_config(values, secrets)


@pytest.mark.parametrize(
    ("camel_name", "snake_name"),
    [
        ("bucketName", "bucket_name"),
        ("kmsKeyId", "kms_key_id"),
        ("memoryMb", "memory_mb"),
        ("region", "region"),
    ],
)
def test_case_conversion_round_trips(camel_name, snake_name):
    assert snake(camel_name) == snake_name
    assert camel(snake_name) == camel_name
