"""Short codes: base62, the id permutation, alias rules (pure functions)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import codes as codes

ids = st.integers(min_value=1, max_value=codes.MAX_ID)


@pytest.mark.parametrize(
    "number, text",
    [
        (0, "0"),
        (9, "9"),
        (10, "a"),
        (35, "z"),
        (36, "A"),
        (61, "Z"),
        (62, "10"),
        (62**2 - 1, "ZZ"),
        (125, "21"),
    ],
)
def test_base62_digits_are_0_9_a_z_A_Z(number, text):
    assert codes.encode(number) == text
    assert codes.decode(text) == number


@given(st.integers(min_value=0, max_value=2**128))
def test_base62_round_trip(number):
    assert codes.decode(codes.encode(number)) == number


@given(st.text(alphabet=codes.ALPHABET, min_size=1, max_size=30))
def test_base62_round_trip_from_text_without_leading_zeros(text):
    canonical = text.lstrip("0") or "0"
    assert codes.encode(codes.decode(text)) == canonical


def test_encode_pads_to_length():
    assert codes.encode(61, 7) == "000000Z"


@pytest.mark.parametrize("text", ["", "abc-", "ab c", "é", "a_b"])
def test_decode_refuses_non_base62(text):
    with pytest.raises(ValueError):
        codes.decode(text)


def test_encode_refuses_negative_numbers():
    with pytest.raises(ValueError):
        codes.encode(-1)


@pytest.mark.parametrize("bits", [2, 8, 12, 16])
def test_permutation_is_a_bijection_exhaustively_on_small_widths(bits):
    feistel = codes.Feistel(bits, codes.ROUND_KEYS)
    images = [feistel.forward(n) for n in range(2**bits)]
    assert sorted(images) == list(range(2**bits))
    assert [feistel.inverse(image) for image in images] == list(range(2**bits))


@given(st.integers(min_value=0, max_value=2**codes.ID_BITS - 1))
def test_permutation_inverse_undoes_forward_on_the_full_width(number):
    image = codes.PERMUTATION.forward(number)
    assert 0 <= image < 2**codes.ID_BITS
    assert codes.PERMUTATION.inverse(image) == number
    assert codes.PERMUTATION.forward(codes.PERMUTATION.inverse(number)) == number


@pytest.mark.parametrize("bits", [0, 3, 66])
def test_permutation_width_must_be_even(bits):
    with pytest.raises(ValueError):
        codes.Feistel(bits, codes.ROUND_KEYS)


def test_consecutive_ids_do_not_get_consecutive_codes():
    images = [codes.PERMUTATION.forward(n) for n in range(1, 1001)]
    assert all(abs(a - b) > 1 for a, b in zip(images, images[1:]))
    generated = [codes.code_for_id(n) for n in range(1, 1001)]
    assert generated != sorted(generated)
    # The leading character varies, not just the last one (2**40 < 20 * 62**6,
    # so it has 20 possible values).
    assert len({code[0] for code in generated}) >= 15


@given(ids)
def test_code_round_trip(row_id):
    code = codes.code_for_id(row_id)
    assert len(code) == codes.CODE_LENGTH
    assert codes.looks_like_code(code)
    assert codes.id_for_code(code) == row_id


def test_the_largest_id_still_fits_seven_characters():
    assert 62**codes.CODE_LENGTH > 2**codes.ID_BITS
    assert codes.id_for_code(codes.code_for_id(codes.MAX_ID)) == codes.MAX_ID


@pytest.mark.parametrize("row_id", [0, -1, codes.MAX_ID + 1])
def test_ids_outside_the_range_have_no_code(row_id):
    with pytest.raises(ValueError):
        codes.code_for_id(row_id)


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "abcdef",
        "abcdefgh",
        "abc-efg",
        "abc_efg",
        "ZZZZZZZ",  # ZZZZZZZ > 2**40
    ],
)
def test_texts_that_are_not_generated_codes_decode_to_nothing(text):
    assert codes.id_for_code(text) is None


@pytest.mark.parametrize(
    "alias",
    ["abc", "my-link", "spring_sale_2024", "a" * 64, "abcdef", "abcdefgh", "abc-efg"],
)
def test_acceptable_aliases(alias):
    assert codes.alias_error(alias) is None


@pytest.mark.parametrize(
    "alias, reason",
    [
        ("ab", "3 to 64"),
        ("a" * 65, "3 to 64"),
        ("a b", "3 to 64"),
        ("a/b", "3 to 64"),
        ("a.b", "3 to 64"),
        ("héllo", "3 to 64"),
        ("abcdefg", "generated codes"),
        ("Promo24", "generated codes"),
        ("links", "reserved"),
        ("Notes", "reserved"),
        ("HEALTH", "reserved"),
        ("supply_primes", "reserved"),
    ],
)
def test_refused_aliases(alias, reason):
    assert reason in codes.alias_error(alias)


@given(st.from_regex(codes.ALIAS_PATTERN, fullmatch=True))
def test_an_accepted_alias_is_never_a_generated_code(alias):
    if codes.alias_error(alias) is None:
        assert codes.id_for_code(alias) is None
