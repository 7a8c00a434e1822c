"""Typed stack config: camelCase blocks -> component args, errors named as in the stack file."""

import pytest

from components.stack_config import (
    KubernetesConfig,
    camel,
    deploys_nothing,
    parse_stack_config,
    snake,
)

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
    ("values", "message"),
    [
        ({"ossTarget": {"region": "cn-hangzhou"}}, r"^ossTarget\.bucketName: is required$"),
        ({"ossTarget": {"bucketName": "acme-events"}}, r"^ossTarget\.region: is required$"),
        ({"cosSource": {"bucketName": "uploads"}}, r"^cosSource\.region: is required$"),
        (
            {"cosSource": {**COS, "events": "cos:ObjectCreated:*"}},
            r"^cosSource\.events: is the string 'cos:ObjectCreated:\*', not a list",
        ),
        (
            {"cosSource": {**COS, "function": {"timeoutSeconds": 0}}},
            r"^cosSource\.function\.timeoutSeconds: ",
        ),
        (
            {"cosSource": {**COS, "function": {"vpc": {"vpcId": "vpc-1a2b3c4d"}}}},
            r"^cosSource\.function\.vpc\.subnetId: is required",
        ),
        (
            {"cosSource": {**COS, "function": {"publicNetwork": False}}},
            r"^cosSource\.function\.publicNetwork: ",
        ),
        (
            {"cosSource": {**COS, "function": {"retryAttempts": 5}}},
            r"^cosSource\.function\.retryAttempts: ",
        ),
        ({"cosSource": {**COS, "region": "cn-hangzhou"}}, r"^cosSource\.region: .*Alibaba"),
        ({"ossTarget": {**OSS, "region": "cn-hangzou"}}, r"did you mean cn-hangzhou\?"),
        (
            {"ossTarget": {**OSS, "credentials": {"mode": "rrsa"}}},
            r"^ossTarget\.credentials\.oidcProviderArn: is required",
        ),
        (
            {"ossTarget": {**OSS, "credentials": {"mode": "rrsa", "oidcIssuer": "x"}}},
            r"^ossTarget\.credentials\.oidcIssuer: unknown key",
        ),
        ({"ossTarget": {**OSS, "ramUserName": "-w"}}, r"^ossTarget\.ramUserName: "),
    ],
)
def test_stack_file_errors_use_the_stack_files_names(values, message):
    with pytest.raises(ValueError, match=message):
        parse_stack_config(values)


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


def test_new_fields_reach_the_components():
    config = parse_stack_config(
        {
            "ossTarget": {
                **OSS,
                "forceDestroy": True,
                "credentials": {
                    "mode": "rrsa",
                    "oidcProviderArn": "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1",
                    "oidcIssuerUrl": "https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/c1",
                    "serviceAccountName": "writer",
                },
            },
            "cosSource": {
                **COS,
                "forceDestroy": True,
                "function": {
                    "vpc": {"vpcId": "vpc-1a2b3c4d", "subnetId": "subnet-5e6f7a8b"},
                    "publicNetwork": False,
                    "retryAttempts": 0,
                    "maxEventAgeSeconds": 600,
                },
            },
        }
    )
    assert config.oss_target["force_destroy"] is True
    assert config.oss_target["credentials"]["service_account_name"] == "writer"
    assert config.oss_target["credentials"]["oidc_issuer_url"].startswith("https://")
    cos = config.cos_source
    assert cos["function_vpc"] == {"vpc_id": "vpc-1a2b3c4d", "subnet_id": "subnet-5e6f7a8b"}
    assert (cos["public_network"], cos["retry_attempts"], cos["max_event_age_seconds"]) == (
        False,
        0,
        600,
    )
    assert cos["force_destroy"] is True


def test_a_stack_that_deploys_nothing_is_flagged():
    assert deploys_nothing(parse_stack_config({"kubernetes": {"namespace": "x"}}))
    assert not deploys_nothing(parse_stack_config({"ossTarget": OSS}))


def test_data_lake_fields_reach_the_oss_target():
    config = parse_stack_config(
        {
            "ossTarget": {
                **OSS,
                "keyTemplate": "dt=%F/{type}/{id}",
                "batch": {
                    "maxEvents": 1000,
                    "maxBytes": 4194304,
                    "maxSeconds": 2.5,
                    "compression": "gzip",
                },
            }
        }
    )
    assert config.oss_target["key_template"] == "dt=%F/{type}/{id}"
    assert config.oss_target["batch"] == {
        "max_events": 1000,
        "max_bytes": 4194304,
        "max_seconds": 2.5,
        "compression": "gzip",
    }


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"keyTemplate": "../{id}"}, r"^ossTarget\.keyTemplate: .*'\.\.'"),
        ({"keyTemplate": "%Q"}, r"^ossTarget\.keyTemplate: '%Q' is not a supported"),
        ({"batch": {"maxEvent": 10}}, r"^ossTarget\.batch\.maxEvent: unknown key"),
        ({"batch": {"compression": "gzip"}}, r"^ossTarget\.batch\.maxEvents: is required"),
        ({"batch": {"maxEvents": 0}}, r"^ossTarget\.batch\.maxEvents: 0 must be"),
        ({"batch": {"maxEvents": 5, "maxBytes": "8Mi"}}, r"^ossTarget\.batch\.maxBytes: "),
        ({"batch": {"maxEvents": 5, "maxSeconds": 0}}, r"^ossTarget\.batch\.maxSeconds: "),
        ({"batch": {"maxEvents": 5, "compression": "br"}}, r"^ossTarget\.batch\.compression: "),
    ],
)
def test_data_lake_field_errors_use_the_stack_files_names(block, message):
    with pytest.raises(ValueError, match=message):
        parse_stack_config({"ossTarget": {**OSS, **block}})
