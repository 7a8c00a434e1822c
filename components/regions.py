"""The region ids each cloud accepts, maintained in this one place, and the check that uses them.

A typo (`cn-hangzou`) or the other cloud's id (`ap-guangzhou` for Alibaba) fails before any
resource exists, with the valid ids listed. Sources: Alibaba Cloud OSS "Regions and endpoints" and
Tencent Cloud "Regions and Availability Zones" (COS/SCF public regions). Add a region here when a
cloud opens one; nothing else needs to change.
"""

import difflib

ALIBABA_REGIONS = (
    "cn-hangzhou",
    "cn-shanghai",
    "cn-nanjing",
    "cn-fuzhou",
    "cn-wuhan-lr",
    "cn-qingdao",
    "cn-beijing",
    "cn-zhangjiakou",
    "cn-huhehaote",
    "cn-wulanchabu",
    "cn-shenzhen",
    "cn-heyuan",
    "cn-guangzhou",
    "cn-chengdu",
    "cn-hongkong",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-3",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "us-east-1",
    "us-west-1",
    "na-south-1",
    "eu-west-1",
    "eu-central-1",
    "me-east-1",
    "me-central-1",
)

TENCENT_REGIONS = (
    "ap-guangzhou",
    "ap-shanghai",
    "ap-nanjing",
    "ap-beijing",
    "ap-chengdu",
    "ap-chongqing",
    "ap-hongkong",
    "ap-singapore",
    "ap-jakarta",
    "ap-seoul",
    "ap-bangkok",
    "ap-tokyo",
    "na-siliconvalley",
    "na-ashburn",
    "sa-saopaulo",
    "eu-frankfurt",
)

_CLOUDS = {"Alibaba Cloud": ALIBABA_REGIONS, "Tencent Cloud": TENCENT_REGIONS}


def check_region(cloud: str, region: object, field: str = "region") -> str:
    """Answers `region` when `cloud` ("Alibaba Cloud" or "Tencent Cloud") has it; else raises
    ValueError("<field>: ...") naming the closest id, the other cloud when it is theirs, and every
    valid id."""
    valid = _CLOUDS[cloud]
    if isinstance(region, str) and region in valid:
        return region
    hint = ""
    if isinstance(region, str):
        other = next((c for c, ids in _CLOUDS.items() if c != cloud and region in ids), None)
        close = difflib.get_close_matches(region, valid, n=1, cutoff=0.8)
        if other:
            hint = f" that id is {other}'s;"
        elif close:
            hint = f" did you mean {close[0]}?"
    raise ValueError(
        f"{field}: {region!r} is not one of {cloud}'s regions;{hint} valid: {', '.join(valid)}"
    )
