"""Luhn (mod 10) check digits for member numbers, so a mistyped card number is caught."""


def check_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:  # rightmost payload digit gets doubled (check digit goes after it)
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def is_valid(number: str) -> bool:
    if not number or not number.isdigit() or len(number) < 2:
        return False
    return check_digit(number[:-1]) == number[-1]
