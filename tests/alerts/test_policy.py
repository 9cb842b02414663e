import pytest

from alerts import policy


@pytest.mark.parametrize(("value", "expected"), [
    ("", []),
    ("a@x.org", ["a@x.org"]),
    (" a@x.org, b@y.org ;a@x.org,", ["a@x.org", "b@y.org"]),
])
def test_parse_recipients(value, expected):
    assert policy.parse_recipients(value) == expected


@pytest.mark.parametrize(("profile", "expected"), [
    ("login", ["soc@x.org"]), ("sensor", ["ops@x.org"]), ("generic", ["ops@x.org"])])
def test_login_goes_to_security_and_sensors_to_maintenance(profile, expected):
    assert policy.recipients_for(profile, security="soc@x.org", maintenance="ops@x.org") == \
        expected


@pytest.mark.parametrize(("minimum", "expected"), [
    ("low", ["low", "medium", "high", "critical"]), ("high", ["high", "critical"]),
    ("critical", ["critical"])])
def test_severities_from(minimum, expected):
    assert policy.severities_from(minimum) == expected


def test_unknown_minimum_severity():
    with pytest.raises(ValueError, match="one of low, medium, high, critical; got 'urgent'"):
        policy.severities_from("urgent")


def test_dedupe_key_is_stable_per_run_and_recipient_group():
    key = policy.dedupe_key(7, ["a@x.org", "B@y.org"])
    assert key == policy.dedupe_key(7, ["b@y.org", "a@x.org"])
    assert key != policy.dedupe_key(8, ["a@x.org", "b@y.org"])
    assert key != policy.dedupe_key(7, ["a@x.org"])


def test_throttle():
    assert not policy.throttled(5, 6) and policy.throttled(6, 6)
