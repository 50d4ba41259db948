from hypothesis import given
from hypothesis import strategies as st

from members import luhn
from members.services import generate_member_number


def test_luhn_accepts_known_valid_card_number():
    assert luhn.is_valid("79927398713")


def test_luhn_rejects_single_digit_typo_and_non_digits():
    assert not luhn.is_valid("79927398710")
    assert not luhn.is_valid("7992739871x")
    assert not luhn.is_valid("")


@given(st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_appended_check_digit_always_validates(payload):
    assert luhn.is_valid(payload + luhn.check_digit(payload))


@given(
    st.text(alphabet="0123456789", min_size=1, max_size=20),
    st.integers(min_value=0),
    st.integers(min_value=1, max_value=9),
)
def test_any_single_digit_change_is_caught(payload, position, delta):
    number = payload + luhn.check_digit(payload)
    i = position % len(number)
    changed = number[:i] + str((int(number[i]) + delta) % 10) + number[i + 1 :]
    assert not luhn.is_valid(changed)


def test_generated_member_numbers_are_12_digits_and_valid():
    for _ in range(200):
        number = generate_member_number()
        assert len(number) == 12 and number[0] != "0" and luhn.is_valid(number)
