"""Typed stack config: camelCase blocks -> component args, errors named as in the stack file."""

import pytest

from components.schema import stack_name
from components.stack_config import KubernetesConfig, deploys_nothing, parse_stack_config

OSS = {"region": "cn-hangzhou", "bucketName": "acme-events"}
COS = {"region": "ap-guangzhou", "bucketName": "uploads", "sinkUrl": "https://sink.example/"}
SECRET = object()  # stands for a secret Output
COS_RELAY = {k: v for k, v in COS.items() if k != "sinkUrl"}
RELAY_64MI = {"memoryLimit": "64Mi", "memoryRequest": "32Mi"}


def test_absent_or_empty_blocks_deploy_nothing():
    config = parse_stack_config({"kubernetes": {}, "ossTarget": {}, "cosSource": None})
    assert (config.oss_target, config.cos_source) == (None, None)
    assert config.kubernetes == KubernetesConfig(namespace="cloudevents-dev")


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
    assert args["function"] == {
        "name": "fn",
        "namespace": "ns",
        "memory_mb": 256,
        "timeout_seconds": 60,
    }
    assert args["relay"] == {
        "sink_url": "http://broker/",
        "public_url": "https://r/",
        "runtime": {"mode": "knative", "namespace": "cloudevents-dev"},
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
            r"^ossTarget\.runtime\.namespace: set kubernetes\.namespace instead$",
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
        # A limit the runtime cannot start with (it would exit 2 and crash-loop).
        (
            {"ossTarget": {**OSS, "runtime": {"memoryLimit": "128Mi", "memoryRequest": "64Mi"}}},
            {},
            r"^ossTarget\.runtime\.memoryLimit: '128Mi' is too small .* at least 160Mi",
        ),
        (
            {"cosSource": {**COS_RELAY, "relay": {"sinkUrl": "http://b/", "runtime": RELAY_64MI}}},
            {},
            r"^cosSource\.relay\.runtime\.memoryLimit: '64Mi' is too small .* at least 113Mi",
        ),
        # Requests above limits: the API server refuses the pod.
        (
            {"ossTarget": {**OSS, "runtime": {"cpuRequest": "2", "cpuLimit": "500m"}}},
            {},
            r"^ossTarget\.runtime\.cpuRequest: '2' is more than the limit '500m'",
        ),
        (
            {"ossTarget": {**OSS, "runtime": {"memoryRequest": "1Gi", "memoryLimit": "512Mi"}}},
            {},
            r"^ossTarget\.runtime\.memoryRequest: '1Gi' is more than the limit '512Mi'",
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
        # Types, from the schema: what was written is named, nothing is coerced.
        (
            {"ossTarget": {**OSS, "bucketName": 3}},
            r"^ossTarget\.bucketName: must be a string, not 3$",
        ),
        (
            {"ossTarget": {**OSS, "createBucket": "yes"}},
            r"^ossTarget\.createBucket: must be true or false, not 'yes'$",
        ),
        (
            {"ossTarget": {**OSS, "expirationDays": "7"}},
            r"^ossTarget\.expirationDays: must be an integer, not the string '7'; .*unquoted$",
        ),
        (
            {"ossTarget": {**OSS, "runtime": "big"}},
            r"^ossTarget\.runtime: must be an object \(key: value lines\), not str$",
        ),
        (
            {"ossTarget": {**OSS, "runtime": {"min_replicas": 2}}},
            r"^ossTarget\.runtime\.min_replicas: unknown key; known: image, imagePullPolicy, ",
        ),
        (
            {"ossTarget": {**OSS, "accessKeySecret": "plain"}},
            r"^ossTarget\.accessKeySecret: a secret never goes in the stack file",
        ),
        (
            {
                "cosSource": {
                    "region": "ap-guangzhou",
                    "bucketName": "uploads",
                    "relay": {"sinkUrl": "http://b/", "signingSecret": "x"},
                }
            },
            r"^cosSource\.relay\.signingSecret: a secret never goes in the stack file",
        ),
        (
            {"cosSource": {**COS, "relay": {"publicUrl": "https://r/"}}},
            r"^cosSource\.relay\.sinkUrl: is required$",
        ),
        (
            {"cosSource": {**COS, "prefix": ["a"]}},
            r"^cosSource\.prefix: must be a string, not a list$",
        ),
        (
            {
                "cosSource": {
                    **COS,
                    "function": {"vpc": {"vpcId": "vpc_1", "subnetId": "subnet-1a2b3c4d"}},
                }
            },
            r"^cosSource\.function\.vpc\.vpcId: 'vpc_1' is not an id like vpc-1a2b3c4d$",
        ),
        (
            {"cosSource": {**COS, "function": {"packageDir": "/tmp"}}},
            r"^cosSource\.function\.packageDir: unknown key",
        ),
        ({"cosSource": {**COS, "packageDir": "/tmp"}}, r"^cosSource\.packageDir: unknown key"),
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
def test_python_paths_are_written_in_stack_file_names(camel_name, snake_name):
    assert stack_name(snake_name) == camel_name
    assert stack_name(f"function.vpc.{snake_name}") == f"function.vpc.{camel_name}"


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
    assert cos["function"] == {
        "vpc": {"vpc_id": "vpc-1a2b3c4d", "subnet_id": "subnet-5e6f7a8b"},
        "public_network": False,
        "retry_attempts": 0,
        "max_event_age_seconds": 600,
    }
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
        ({"batch": {"maxEvents": 1, "maxEvent": 10}}, r"^ossTarget\.batch\.maxEvent: unknown key"),
        ({"batch": {"compression": "gzip"}}, r"^ossTarget\.batch\.maxEvents: is required"),
        ({"batch": {"maxEvents": 0}}, r"^ossTarget\.batch\.maxEvents: 0 must be"),
        ({"batch": {"maxEvents": 5, "maxBytes": "8Mi"}}, r"^ossTarget\.batch\.maxBytes: "),
        ({"batch": {"maxEvents": 5, "maxSeconds": 0}}, r"^ossTarget\.batch\.maxSeconds: "),
        ({"batch": {"maxEvents": 5, "compression": "br"}}, r"^ossTarget\.batch\.compression: "),
        # The runtime's in-flight budget: (256Mi - 112Mi) / 3 = 50331648 bytes.
        (
            {"batch": {"maxEvents": 5, "maxBytes": 64 * 1024**2}},
            r"^ossTarget\.batch\.maxBytes: 67108864 is above .* must be at most 50331648",
        ),
        (
            {
                "batch": {"maxEvents": 5, "maxBytes": 20 * 1024**2},
                "runtime": {"memoryLimit": "160Mi"},
            },
            r"^ossTarget\.batch\.maxBytes: 20971520 is above .* must be at most 16777216",
        ),
    ],
)
def test_data_lake_field_errors_use_the_stack_files_names(block, message):
    with pytest.raises(ValueError, match=message):
        parse_stack_config({"ossTarget": {**OSS, **block}})


def test_two_stacks_never_share_a_default_namespace():
    # createNamespace defaults to true: a shared default would let one stack delete the other's.
    namespaces = {
        stack: parse_stack_config({"ossTarget": OSS}, stack=stack).kubernetes.namespace
        for stack in ("dev", "prod", "Team_A/Staging")
    }
    assert namespaces == {
        "dev": "cloudevents-dev",
        "prod": "cloudevents-prod",
        "Team_A/Staging": "cloudevents-team-a-staging",
    }
    long = parse_stack_config({}, stack="s" * 80).kubernetes.namespace
    assert len(long) <= 63 and long.startswith("cloudevents-sss")


def test_numbers_that_config_set_path_stores_for_text_fields_are_their_text():
    # `pulumi config set --path cosSource.appId 1250000000` and `... cpuLimit 1` write YAML
    # numbers; for these string fields a number is unambiguous.
    runtime = {"cpuLimit": 1, "cpuRequest": 0.5, "memoryLimit": 536870912, "memoryRequest": 1.0e8}
    config = parse_stack_config(
        {
            "ossTarget": {**OSS, "runtime": runtime},
            "cosSource": {**COS, "appId": 1250000000},
        }
    )
    assert config.oss_target["runtime"] == {
        "cpu_limit": "1",
        "cpu_request": "0.5",
        "memory_limit": "536870912",
        "memory_request": "100000000",
        "namespace": "cloudevents-dev",
    }
    assert config.cos_source["app_id"] == "1250000000"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"ossTarget": {**OSS, "createBucket": "false"}},
            r"^ossTarget\.createBucket: must be true or false, not the string 'false'; .*unquoted",
        ),
        (
            {"ossTarget": {**OSS, "expirationDays": "7"}},
            r"^ossTarget\.expirationDays: must be an integer, not the string '7'; .*unquoted",
        ),
        # Where a number is not text's stand-in, it stays an error that names the type.
        ({"ossTarget": {**OSS, "bucketName": 42}}, r"^ossTarget\.bucketName: must be a string"),
        (
            {"ossTarget": {**OSS, "runtime": {"cpuLimit": True}}},
            r"^ossTarget\.runtime\.cpuLimit: must be a string, not True",
        ),
    ],
)
def test_types_config_set_cannot_mean_are_reported_clearly(values, message):
    with pytest.raises(ValueError, match=message):
        parse_stack_config(values)


@pytest.mark.parametrize("reserved", ["default", "kube-system", "kube-public", "kube-node-lease"])
def test_created_namespace_is_not_one_of_kubernetes_own(reserved):
    from components.stack_config import _kubernetes

    with pytest.raises(ValueError, match=f"^kubernetes.namespace: '{reserved}' is one of"):
        _kubernetes({"namespace": reserved}, "dev")
    assert _kubernetes({"namespace": reserved, "createNamespace": False}, "dev").namespace == (
        reserved
    )
