"""One schema, two spellings: the same mistake is named in the caller's own words, snake_case for a
Python program and camelCase for a stack file; nothing is coerced."""

import pulumi
import pytest

from components import AlibabaOssTargetArgs, TencentCosSourceArgs
from components.schema import validate

COS = {"region": "ap-guangzhou", "bucket_name": "uploads", "sink_url": "https://s/"}
COS_STACK = {"region": "ap-guangzhou", "bucketName": "uploads", "sinkUrl": "https://s/"}


@pytest.mark.parametrize(
    ("python", "stack", "python_message", "stack_message"),
    [
        (
            {**COS, "function": {"vpc": {"vpc_id": 3}}},
            {**COS_STACK, "function": {"vpc": {"vpcId": 3}}},
            "function.vpc.vpc_id: must be a string, not 3",
            "cosSource.function.vpc.vpcId: must be a string, not 3",
        ),
        (
            {**COS, "function": {"memory_mb": "256"}},
            {**COS_STACK, "function": {"memoryMb": "256"}},
            "function.memory_mb: must be an integer, not '256'",
            "cosSource.function.memoryMb: must be an integer, not the string '256'; in the stack "
            "file write it unquoted",
        ),
        (
            {"region": "ap-guangzhou"},
            {"region": "ap-guangzhou"},
            "bucket_name: is required",
            "cosSource.bucketName: is required",
        ),
        (
            {**COS, "gateway": {"target": "h:1", "eventbus": "e", "event_bus": "x"}},
            {**COS_STACK, "gateway": {"target": "h:1", "eventbus": "e", "eventBus": "x"}},
            "gateway.event_bus: unknown argument; known: target, eventbus, api, namespace",
            "cosSource.gateway.eventBus: unknown key; known: target, eventbus, api, namespace",
        ),
        (
            {**COS, "events": "cos:ObjectCreated:*"},
            {**COS_STACK, "events": "cos:ObjectCreated:*"},
            "events: is the string 'cos:ObjectCreated:*', not a list",
            "cosSource.events: is the string 'cos:ObjectCreated:*', not a list",
        ),
    ],
)
def test_mistakes_are_named_in_the_callers_own_words(python, stack, python_message, stack_message):
    with pytest.raises(ValueError) as from_python:
        validate(TencentCosSourceArgs, python)
    assert str(from_python.value).startswith(python_message)
    with pytest.raises(ValueError) as from_stack:
        validate(TencentCosSourceArgs, stack, stack_path="cosSource")
    assert str(from_stack.value).startswith(stack_message)


def test_python_callers_may_pass_outputs_where_a_stack_file_never_can():
    output = pulumi.Output.from_input("acme-events")
    args = validate(AlibabaOssTargetArgs, {"region": "cn-hangzhou", "bucket_name": output})
    assert args["bucket_name"] is output
    with pytest.raises(ValueError, match=r"^ossTarget\.bucketName: must be a string"):
        validate(
            AlibabaOssTargetArgs,
            {"region": "cn-hangzhou", "bucketName": output},
            stack_path="ossTarget",
        )


def test_plain_fields_refuse_an_output():
    # create_bucket decides which resources exist, so it must be known at construction.
    with pytest.raises(ValueError, match=r"^create_bucket: must be true or false"):
        validate(
            AlibabaOssTargetArgs,
            {"region": "r", "bucket_name": "b", "create_bucket": pulumi.Output.from_input(True)},
        )


def test_whole_floats_from_other_languages_are_integers_for_python_callers():
    # Pulumi's component provider hands integer inputs over as floats (the wire's numbers).
    args = validate(TencentCosSourceArgs, {**COS, "function": {"memory_mb": 256.0}})
    assert args["function"]["memory_mb"] == 256 and type(args["function"]["memory_mb"]) is int
    with pytest.raises(ValueError, match=r"^function\.memory_mb: "):
        validate(TencentCosSourceArgs, {**COS, "function": {"memory_mb": 256.5}})
    # A stack file is YAML read as written: 256.0 there is not an integer.
    with pytest.raises(ValueError, match=r"^cosSource\.function\.memoryMb: must be an integer"):
        validate(
            TencentCosSourceArgs,
            {**COS_STACK, "function": {"memoryMb": 256.0}},
            stack_path="cosSource",
        )
