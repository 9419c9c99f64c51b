"""Pure rules of the control plane: configuration checks, alias routing, markers, ARNs."""
from __future__ import annotations

import itertools
import random

import pytest

from berth.api.errors import ServiceError
from berth.lambda_.aliases import check_routing
from berth.lambda_.arns import function_ref, parse_function_ref
from berth.lambda_.configuration import check_environment, config_values, fingerprint
from berth.lambda_.markers import page
from berth.lambda_.resolve import pick_version


def test_function_references_in_every_spelling() -> None:
    cases = {
        "f": ("f", None, None, None),
        "f:live": ("f", "live", None, None),
        "000000000000:function:f": ("f", None, None, "000000000000"),
        "arn:aws:lambda:us-east-1:000000000000:function:f": ("f", None, "us-east-1",
                                                              "000000000000"),
        "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST": ("f", "$LATEST",
                                                                      "us-east-1",
                                                                      "000000000000"),
        "arn:aws:lambda:eu-west-2:000000000000:function:my-fn_2:7": ("my-fn_2", "7",
                                                                      "eu-west-2",
                                                                      "000000000000"),
    }
    for text, (name, qualifier, region, account) in cases.items():
        ref = parse_function_ref(text)
        assert (ref.name, ref.qualifier, ref.region, ref.account) == (name, qualifier, region,
                                                                      account), text


def test_function_ref_checks_region_and_qualifier() -> None:
    arn = "arn:aws:lambda:eu-west-1:000000000000:function:f"
    with pytest.raises(ServiceError) as err:
        function_ref(arn, "us-east-1", "000000000000")
    assert err.value.code == "InvalidParameterValueException"
    with pytest.raises(ServiceError) as err:
        function_ref("f:1", "us-east-1", "000000000000", qualifier="2")
    assert "does not match" in err.value.message
    assert function_ref("f:1", "us-east-1", "000000000000", qualifier="1").qualifier == "1"
    assert function_ref("f", "us-east-1", "000000000000", qualifier="live").qualifier == "live"


def test_weighted_routing_follows_the_weights() -> None:
    rng = random.Random(7)
    picks = [pick_version("1", {"2": 0.25}, rng.random) for _ in range(4000)]
    share = picks.count("2") / len(picks)
    assert 0.22 < share < 0.28
    assert set(picks) == {"1", "2"}
    assert pick_version("1", {}, rng.random) == "1"
    assert pick_version("1", {"2": 0.0}, lambda: 0.0) == "1"
    assert pick_version("1", {"2": 1.0}, lambda: 0.999) == "2"


@pytest.mark.parametrize("primary,weights,fragment", [
    ("$LATEST", {"2": 0.5}, "$LATEST is not supported"),
    ("1", {"1": 0.5}, "same version"),
    ("1", {"2": 0.5, "3": 0.1}, "cannot be greater than 1"),
])
def test_invalid_routing(primary: str, weights: dict[str, float], fragment: str) -> None:
    with pytest.raises(ServiceError) as err:
        check_routing(primary, weights)
    assert err.value.code == "InvalidParameterValueException"
    assert fragment in err.value.message


def test_configuration_defaults_and_checks() -> None:
    base = config_values({"Runtime": "python3.12", "Handler": "a.h", "Role": "r"}, None)
    assert (base["memory_size"], base["timeout"], base["ephemeral_storage"],
            base["architectures"]) == (128, 3, 512, ["x86_64"])
    provided = config_values({"Runtime": "provided.al2023", "Role": "r"}, None)
    assert provided["handler"] is None
    for bad, code in [({"Runtime": "java21", "Handler": "a"}, "InvalidParameterValueException"),
                      ({"Runtime": "python2.7", "Handler": "a"},
                       "InvalidParameterValueException"),
                      ({"Runtime": "python3.12"}, "InvalidParameterValueException"),
                      ({"Runtime": "python3.12", "Handler": "a", "MemorySize": 10241},
                       "ValidationException"),
                      ({"Runtime": "python3.12", "Handler": "a", "Timeout": 901},
                       "ValidationException"),
                      ({"Runtime": "python3.12", "Handler": "a",
                        "EphemeralStorage": {"Size": 10241}}, "ValidationException")]:
        with pytest.raises(ServiceError) as err:
            config_values({"Role": "r", **bad}, None)
        assert err.value.code == code, bad


def test_environment_limits() -> None:
    assert check_environment({"A": "1"}) == {"A": "1"}
    with pytest.raises(ServiceError) as err:
        check_environment({"AWS_REGION": "x", "OK": "1"})
    assert "Reserved keys used in this request: AWS_REGION" in err.value.message
    with pytest.raises(ServiceError) as err:
        check_environment({"BIG": "x" * 4090})
    assert "exceeded the 4KB limit" in err.value.message


def test_fingerprint_tracks_code_and_configuration() -> None:
    a = config_values({"Runtime": "python3.12", "Handler": "a.h", "Role": "r"}, None)
    a["code_sha256"] = "abc"
    assert fingerprint(a) == fingerprint(dict(a))
    assert fingerprint(a) != fingerprint({**a, "code_sha256": "abd"})
    assert fingerprint(a) != fingerprint({**a, "environment": {"X": "1"}})


def test_pages_cover_everything_once() -> None:
    items = [(n, v) for n, v in itertools.product("abcdefg", range(9))]
    seen, marker = [], None
    for _ in range(100):
        chunk, marker = page(items, lambda i: [i[0], i[1]], marker, 10)
        seen += chunk
        if marker is None:
            break
    assert seen == items
    with pytest.raises(ServiceError):
        page(items, lambda i: [i[0], i[1]], "!!not-a-marker", 10)
