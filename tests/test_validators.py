"""disentangle.validators: the attrs validators offered to plug-in config classes."""

import attrs
import pytest

import disentangle
from disentangle import testing
from disentangle.validators import int_in_range, one_of, positive_int


@attrs.frozen
class Config:
    n: int = attrs.field(default=1, validator=positive_int)
    size: int = attrs.field(default=32, validator=int_in_range(16, 256))
    floor: int = attrs.field(default=0, validator=int_in_range(0))
    limit: int | None = attrs.field(default=None, validator=attrs.validators.optional(positive_int))
    resolution: int = attrs.field(default=64, validator=one_of(64, 32))
    scale: str = attrs.field(default="255", validator=one_of("255", "256"))


def test_valid_values_pass():
    Config(n=3, size=16, floor=10**9, limit=5, resolution=32, scale="256")
    Config(size=256)


@pytest.mark.parametrize("bad, error, words", [
    ({"n": 0}, ValueError, "'n' must be >= 1"),
    ({"n": True}, TypeError, "'n' must be an int"),
    ({"n": 1.0}, TypeError, "'n' must be an int"),
    ({"size": 8}, ValueError, "'size' must be in [16, 256], got 8"),
    ({"size": 257}, ValueError, "'size' must be in [16, 256]"),
    ({"floor": -1}, ValueError, "'floor' must be in [0, inf]"),
    ({"limit": 0}, ValueError, "'limit'"),
    ({"resolution": 48}, ValueError, "'resolution' must be one of 64, 32, got 48"),
    ({"scale": 255}, ValueError, "'scale' must be one of '255', '256'"),
])
def test_bad_values_name_the_parameter(bad, error, words):
    with pytest.raises(error) as info:
        Config(**bad)
    assert words in str(info.value)


def test_bool_never_matches_a_number():
    @attrs.frozen
    class Flags:
        x: int = attrs.field(default=1, validator=one_of(0, 1))
        y: bool = attrs.field(default=True, validator=one_of(True, False))

    with pytest.raises(ValueError):
        Flags(x=True)
    Flags(y=False)


def test_exported_and_roundtrips():
    assert disentangle.validators.positive_int is positive_int and "validators" in disentangle.__all__
    testing.check_config_roundtrip(Config(limit=3, resolution=32))
