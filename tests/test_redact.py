"""Redaction of personal data: a table per kind, the order of kinds, values, extra patterns.

Each kind's table runs against a redactor of that kind alone, so a negative
example shows that the kind itself leaves the text alone (not that an earlier
kind happened to claim it). The test card numbers, IBANs and addresses are the
published test values (or documentation ranges); none belong to anyone.
"""

from __future__ import annotations

from collections import Counter

import pytest

from agent_evals.errors import ConfigError
from agent_evals.redact import KINDS, Redactor, parse_patterns

REGEX_HINT = "patterns use Python re syntax; escape a literal ( ) [ ] { } . + * ? with a backslash"


def only(kind: str, text: str) -> tuple[str, Counter[str]]:
    return Redactor(kinds=(kind,)).redact(text)


# --- email --------------------------------------------------------------------

EMAIL_POSITIVE = [
    ("reach me at jane.doe@example.com", "reach me at <EMAIL>"),
    ("jane+billing@example.co.uk", "<EMAIL>"),
    ("CC: ops-team+urgent@mail.shopwave.io, thanks", "CC: <EMAIL>, thanks"),
    ("Reply-To: <JOHN_SMITH99@Example.COM>", "Reply-To: <<EMAIL>>"),
    ("mailto:first.last@sub.domain-name.org?subject=refund", "mailto:<EMAIL>?subject=refund"),
    ("write to o.brien@uni.ac.at.", "write to <EMAIL>."),
    ("4111111111111111@pay.example.net", "<EMAIL>"),
    ("support%eu@help.example.travel replied", "<EMAIL> replied"),
    # Stray dots are taken with the address rather than letting it through.
    ("(see...jane@example.com)", "(<EMAIL>)"),
]

EMAIL_NEGATIVE = [
    "thanks @support for the quick reply",
    "ping @jane.doe on slack",
    "ssh admin@localhost",
    "a@b",
    "jane at example dot com",
    "foo@bar.c",
    "2 items @ $4.99 each",
    "john.doe@example",
    "icon@2x",
    "root@192.168.0.1",
]


@pytest.mark.parametrize(("text", "expected"), EMAIL_POSITIVE)
def test_email_is_redacted(text: str, expected: str) -> None:
    assert only("email", text) == (expected, Counter({"email": 1}))


@pytest.mark.parametrize("text", EMAIL_NEGATIVE)
def test_not_an_email_stays(text: str) -> None:
    assert only("email", text) == (text, Counter())


# --- phone --------------------------------------------------------------------

PHONE_POSITIVE = [
    ("call me at +1 (415) 555-0132", "call me at <PHONE>"),
    ("+44 20 7946 0958", "<PHONE>"),
    ("mobile: +4915112345678.", "mobile: <PHONE>."),
    ("+33 6 12 34 56 78 after 6pm", "<PHONE> after 6pm"),
    ("+44 (0)20 7946 0958", "<PHONE>"),
    ("(555) 123-4567", "<PHONE>"),
    ("my cell is 555.123.4567, thanks", "my cell is <PHONE>, thanks"),
    ("hotline 1-800-555-0199", "hotline <PHONE>"),
    ("Berlin office 030 1234567", "Berlin office <PHONE>"),
    ("(030) 123 4567", "<PHONE>"),
    ("06 12 34 56 78", "<PHONE>"),
    ("0044 20 7946 0958", "<PHONE>"),
    ("Tel.: 030/1234567", "Tel.: <PHONE>"),
    # Over 15 digits with the number after it: the space-separated tail is dropped.
    ("+1 415 555 0132 12345", "<PHONE> 12345"),
]

PHONE_NEGATIVE = [
    "delivered on 2026-11-24",
    "meeting at 10:30:00",
    "upgraded to v1.2.3",
    "order 12345678901",
    "order 4111111111111112",
    "due 04.11.2026",
    "open 0900-1700",
    "ISBN 978-3-16-148410-0",
    "+5 votes, score +12.5",
    "price 1 234 567",
    "ref 555-123-4567-89",
    "build 10.0.19045.2965",
    "server 10.0.0.1",
    "order 0301-2345-6789-0123-4567",
    # By design: without an area code, 3-4 digits read as a range (100-2000).
    "call 555-0132",
]


@pytest.mark.parametrize(("text", "expected"), PHONE_POSITIVE)
def test_phone_is_redacted(text: str, expected: str) -> None:
    assert only("phone", text) == (expected, Counter({"phone": 1}))


@pytest.mark.parametrize("text", PHONE_NEGATIVE)
def test_not_a_phone_stays(text: str) -> None:
    assert only("phone", text) == (text, Counter())


# --- card ---------------------------------------------------------------------

CARD_POSITIVE = [
    ("card 4111 1111 1111 1111", "card <CARD>"),
    ("5500-0000-0000-0004", "<CARD>"),
    ("amex 378282246310005 exp 12/27", "amex <CARD> exp 12/27"),
    ("6011111111111117", "<CARD>"),
    ("3782 822463 10005", "<CARD>"),
    ("order 4111111111111111 charged twice", "order <CARD> charged twice"),
    ("old visa 4222 2222 2222 2", "old visa <CARD>"),
    ("4111-1111-1111-1111.", "<CARD>."),
    ("19 digits: 4000 0000 0000 0000 006", "19 digits: <CARD>"),
    # A card right after a phone-like prefix: windows of whole groups find it.
    ("call +1 4111 1111 1111 1111 now", "call +1 <CARD> now"),
    ("tel 0800 4111 1111 1111 1111", "tel 0800 <CARD>"),
    # Too long to be a phone, so a '+' in front does not save it.
    ("+4111 1111 1111 1111", "+<CARD>"),
]

CARD_NEGATIVE = [
    "order 4111111111111112",
    "4111 1111 1111 1112",
    "5500-0000-0000-0005",
    "378282246310006",
    "6011111111111118",
    "4000 0000 0000 0000 007",
    "ref 0000 0000 0000 0000",
    "tracking 12345678901234567890123",
    "4111 1111 1111",
    "41 11 11 11 11 11 11 11",
    "call +4915112345678",
]


@pytest.mark.parametrize(("text", "expected"), CARD_POSITIVE)
def test_card_is_redacted(text: str, expected: str) -> None:
    assert only("card", text) == (expected, Counter({"card": 1}))


@pytest.mark.parametrize("text", CARD_NEGATIVE)
def test_not_a_card_stays(text: str) -> None:
    assert only("card", text) == (text, Counter())


def test_several_cards_are_counted() -> None:
    assert only("card", "cards 4111111111111111, 5500000000000004") == (
        "cards <CARD>, <CARD>",
        Counter({"card": 2}),
    )


# --- iban ---------------------------------------------------------------------

IBAN_POSITIVE = [
    ("IBAN DE89 3704 0044 0532 0130 00", "IBAN <IBAN>"),
    ("GB82 WEST 1234 5698 7654 32", "<IBAN>"),
    ("DE89370400440532013000", "<IBAN>"),
    ("FR14 2004 1010 0505 0001 3M02 606", "<IBAN>"),
    ("to NL91ABNA0417164300 please", "to <IBAN> please"),
    ("ES91 2100 0418 4502 0005 1332", "<IBAN>"),
    ("IT60 X054 2811 1010 0000 0123 456", "<IBAN>"),
    ("CH93 0076 2011 6238 5295 7", "<IBAN>"),
    ("BE71 0961 2345 6769 thanks", "<IBAN> thanks"),
    ("gb82 west 1234 5698 7654 32", "<IBAN>"),
    ("ref AB12 DE89 3704 0044 0532 0130 00", "ref AB12 <IBAN>"),
    # A country not in the registry table: any length from 15 to 34.
    ("XY80 1234 5678 9012 3456", "<IBAN>"),
]

IBAN_NEGATIVE = [
    "DE88 3704 0044 0532 0130 00",
    "GB82 WEST 1234 5698 7654 33",
    "DE89 3704 0044 0532 0130 0",
    "DE89 3704 0044 0532 0130 001",
    "NL91ABNA0417164301",
    "BE71 0961 2345 6768",
    "DE89370400440532013000X",
    "flight LH1234 to FR",
    "version ID42 of the form",
    "XY81 1234 5678 9012 3456",
]


@pytest.mark.parametrize(("text", "expected"), IBAN_POSITIVE)
def test_iban_is_redacted(text: str, expected: str) -> None:
    assert only("iban", text) == (expected, Counter({"iban": 1}))


@pytest.mark.parametrize("text", IBAN_NEGATIVE)
def test_not_an_iban_stays(text: str) -> None:
    assert only("iban", text) == (text, Counter())


# --- ip -----------------------------------------------------------------------

IP_POSITIVE = [
    ("server 10.0.0.1", "server <IP>"),
    ("from 192.168.1.254:8080", "from <IP>:8080"),
    ("client 255.255.255.255.", "client <IP>."),
    ("bind 0.0.0.0", "bind <IP>"),
    ("fe80::1ff:fe23:4567:890a", "<IP>"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "<IP>"),
    ("[2001:db8::1]:443", "[<IP>]:443"),
    ("localhost is ::1", "localhost is <IP>"),
    ("mapped ::ffff:192.0.2.128", "mapped <IP>"),
    ("addr 2001:db8::1: timed out", "addr <IP>: timed out"),
    ("fe80::1%eth0", "<IP>%eth0"),
    ("via 010.001.000.001", "via <IP>"),
]

IP_NEGATIVE = [
    "999.1.1.1",
    "v1.2.3",
    "version 10.0",
    "1.2.3",
    "oid 1.3.6.1.4.1",
    "256.100.50.25",
    "v1.2.3.4",
    "meeting at 10:30:00",
    "mac 00:1a:2b:3c:4d:5e",
    "std::vector<int>",
    "build 10.0.19045.2965",
    "pi is 3.14159",
    "a::b",
]


@pytest.mark.parametrize(("text", "expected"), IP_POSITIVE)
def test_ip_is_redacted(text: str, expected: str) -> None:
    assert only("ip", text) == (expected, Counter({"ip": 1}))


@pytest.mark.parametrize("text", IP_NEGATIVE)
def test_not_an_ip_stays(text: str) -> None:
    assert only("ip", text) == (text, Counter())


# --- all kinds together -------------------------------------------------------


def test_kinds_are_applied_in_a_fixed_order() -> None:
    assert KINDS == ("email", "iban", "card", "ip", "phone")


def test_a_ticket_is_redacted_with_counts_per_kind() -> None:
    ticket = (
        "Hi, order 4111111111111112 was charged twice on 2026-11-24 to card 4111 1111 1111 1111 "
        "and 5500-0000-0000-0004. Refund to IBAN DE89 3704 0044 0532 0130 00, or GB82 WEST 1234 5698 7654 32. "
        "Reach me at jane+billing@example.com or +1 (415) 555-0132 / 030 1234567. "
        "App v1.2.3 on server 10.0.0.1 and fe80::1ff:fe23:4567:890a. Thanks @support!"
    )
    assert Redactor().redact(ticket) == (
        "Hi, order 4111111111111112 was charged twice on 2026-11-24 to card <CARD> "
        "and <CARD>. Refund to IBAN <IBAN>, or <IBAN>. "
        "Reach me at <EMAIL> or <PHONE> / <PHONE>. "
        "App v1.2.3 on server <IP> and <IP>. Thanks @support!",
        Counter({"card": 2, "iban": 2, "phone": 2, "ip": 2, "email": 1}),
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "My order 4111111111111112 arrived on 2026-11-24 at 10:30:00, app v1.2.3, thanks @support",
        "tickets 12 34 56, build 10.0.19045.2965, ISBN 978-3-16-148410-0, open 0900-1700",
    ],
)
def test_text_without_personal_data_is_unchanged(text: str) -> None:
    assert Redactor().redact(text) == (text, Counter())


def test_a_card_after_a_phone_prefix_is_a_card_not_a_phone() -> None:
    assert Redactor().redact("call +1 4111 1111 1111 1111 now") == (
        "call +1 <CARD> now",
        Counter({"card": 1}),
    )


def test_a_phone_followed_by_a_card_is_both() -> None:
    assert Redactor().redact("+44 20 7946 0958 4111 1111 1111 1111") == (
        "<PHONE> <CARD>",
        Counter({"phone": 1, "card": 1}),
    )


def test_iban_goes_before_card() -> None:
    # The digit groups of this IBAN after its check digits make a Luhn-valid card layout.
    iban = "DE62 3704 0044 0532 0130 01"
    assert only("card", iban) == ("DE62 <CARD>", Counter({"card": 1}))
    assert Redactor().redact(iban) == ("<IBAN>", Counter({"iban": 1}))


def test_ip_goes_before_phone() -> None:
    assert only("phone", "via 010.100.200.30") == ("via <PHONE>", Counter({"phone": 1}))
    assert Redactor().redact("via 010.100.200.30") == ("via <IP>", Counter({"ip": 1}))


def test_email_goes_first() -> None:
    assert Redactor().redact("4111111111111111@pay.example.net") == ("<EMAIL>", Counter({"email": 1}))


def test_the_order_of_kinds_given_does_not_change_the_order_applied() -> None:
    assert Redactor(kinds=("phone", "card")).redact("call +1 4111 1111 1111 1111 now") == (
        "call +1 <CARD> now",
        Counter({"card": 1}),
    )


def test_kinds_left_out_are_not_applied() -> None:
    assert Redactor(kinds=("email",)).redact("jane@example.com, +44 20 7946 0958") == (
        "<EMAIL>, +44 20 7946 0958",
        Counter({"email": 1}),
    )
    assert Redactor(kinds=()).redact("jane@example.com") == ("jane@example.com", Counter())


def test_redacted_text_is_not_matched_again() -> None:
    text, counts = Redactor().redact("jane@example.com 4111 1111 1111 1111 10.0.0.1 +44 20 7946 0958")
    assert (text, counts) == (
        "<EMAIL> <CARD> <IP> <PHONE>",
        Counter({"email": 1, "card": 1, "ip": 1, "phone": 1}),
    )
    assert Redactor().redact(text) == (text, Counter())


def test_unknown_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        Redactor(kinds=("email", "ssn"))
    assert str(caught.value) == "unknown redaction kind 'ssn' (known kinds: email, iban, card, ip, phone)"


# --- values -------------------------------------------------------------------


def test_redact_value_walks_dicts_and_lists() -> None:
    row = {
        "ticket": {
            "body": "mail jane@example.com",
            "tags": ["vip", "call +44 20 7946 0958"],
            "ips": ["10.0.0.1", "fe80::1"],
        },
        "card_as_text": "4111111111111111",
        "card_as_number": 4111111111111111,
        "refund": 12.5,
        "paid": True,
        "note": None,
        "history": [{"msg": "card 4111 1111 1111 1111"}, ("v1.2.3", 42)],
        "jane@example.com": "keys are field names and stay",
    }
    assert Redactor().redact_value(row) == (
        {
            "ticket": {
                "body": "mail <EMAIL>",
                "tags": ["vip", "call <PHONE>"],
                "ips": ["<IP>", "<IP>"],
            },
            "card_as_text": "<CARD>",
            "card_as_number": 4111111111111111,
            "refund": 12.5,
            "paid": True,
            "note": None,
            "history": [{"msg": "card <CARD>"}, ("v1.2.3", 42)],
            "jane@example.com": "keys are field names and stay",
        },
        Counter({"email": 1, "phone": 1, "ip": 2, "card": 2}),
    )
    assert row["ticket"] == {
        "body": "mail jane@example.com",
        "tags": ["vip", "call +44 20 7946 0958"],
        "ips": ["10.0.0.1", "fe80::1"],
    }


@pytest.mark.parametrize("value", [42, 4111111111111111, 3.5, True, None])
def test_scalars_other_than_text_are_untouched(value: object) -> None:
    assert Redactor().redact_value(value) == (value, Counter())


def test_a_string_value_is_redacted() -> None:
    assert Redactor().redact_value("server 10.0.0.1") == ("server <IP>", Counter({"ip": 1}))


# --- extra patterns -------------------------------------------------------------


def test_extra_pattern_gets_its_own_placeholder_and_count() -> None:
    redactor = Redactor(extra={"ticket_id": r"TCK-\d{6}"})
    assert redactor.redact("see TCK-123456 and TCK-654321 from jane@example.com") == (
        "see <TICKET_ID> and <TICKET_ID> from <EMAIL>",
        Counter({"ticket_id": 2, "email": 1}),
    )


def test_extra_patterns_go_before_the_built_in_kinds() -> None:
    assert Redactor().redact("ORD-4111111111111111") == ("ORD-<CARD>", Counter({"card": 1}))
    assert Redactor(extra={"order_id": r"ORD-\d{16}"}).redact("ORD-4111111111111111") == (
        "<ORDER_ID>",
        Counter({"order_id": 1}),
    )


def test_extra_patterns_do_not_match_inside_each_other() -> None:
    redactor = Redactor(extra={"ticket_id": r"TCK-\d{6}", "shout": r"[A-Z]{4,}"})
    assert redactor.redact("TCK-123456 URGENT") == (
        "<TICKET_ID> <SHOUT>",
        Counter({"ticket_id": 1, "shout": 1}),
    )


def test_zero_width_matches_of_an_extra_pattern_are_skipped() -> None:
    assert Redactor(kinds=(), extra={"word_start": r"\b(?=x)|xy"}).redact("xy ab") == (
        "<WORD_START> ab",
        Counter({"word_start": 1}),
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"ticket_id": r"TCK-(\d{6}"},
            r"redaction pattern ticket_id=TCK-(\d{6} is not a valid regular expression: "
            f"missing ), unterminated subpattern at position 4 ({REGEX_HINT})",
        ),
        (
            {"ticket_id": r"\d*"},
            r"redaction pattern ticket_id=\d* matches the empty string "
            "(make it match at least one character, e.g. + instead of *)",
        ),
        (
            {"Ticket-ID": r"TCK-\d{6}"},
            "redaction pattern name 'Ticket-ID' is not a lowercase identifier "
            "(use lowercase letters, digits and _, starting with a letter, e.g. ticket_id)",
        ),
        (
            {"email": r"[a-z]+@corp\.example"},
            "redaction pattern 'email' has the name of a built-in kind "
            "(built-in kinds are email, iban, card, ip, phone; pick another name)",
        ),
    ],
)
def test_bad_extra_pattern_is_a_config_error(extra: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Redactor(extra=extra)
    assert str(caught.value) == message


def test_parse_patterns_splits_at_the_first_equals_sign() -> None:
    assert parse_patterns([r"ticket_id=TCK-\d{6}", "ref=(?<=ref=)[A-Z0-9]{8}"]) == {
        "ticket_id": r"TCK-\d{6}",
        "ref": "(?<=ref=)[A-Z0-9]{8}",
    }
    assert parse_patterns([]) == {}


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["ticket_id"], r"redaction pattern 'ticket_id' is not name=regex (for example ticket_id=TCK-\d{6})"),
        (
            [r"=TCK-\d{6}"],
            r"redaction pattern '=TCK-\d{6}' is not name=regex (for example ticket_id=TCK-\d{6})",
        ),
        (
            ["ticket_id="],
            r"redaction pattern 'ticket_id=' is not name=regex (for example ticket_id=TCK-\d{6})",
        ),
        (
            [r"ticket_id=TCK-\d{6}", r"ticket_id=T-\d+"],
            "redaction pattern 'ticket_id' is given twice (give each pattern its own name)",
        ),
        (
            [r"ticket_id=TCK-(\d{6}"],
            r"redaction pattern ticket_id=TCK-(\d{6} is not a valid regular expression: "
            f"missing ), unterminated subpattern at position 4 ({REGEX_HINT})",
        ),
    ],
)
def test_bad_pattern_spec_is_a_config_error(specs: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_patterns(specs)
    assert str(caught.value) == message


def test_a_redactor_keeps_its_own_copy_of_the_patterns() -> None:
    extra = {"ticket_id": r"TCK-\d{6}"}
    redactor = Redactor(kinds=("email",), extra=extra)
    extra["ticket_id"] = "never"
    assert redactor == Redactor(kinds=("email",), extra={"ticket_id": r"TCK-\d{6}"})
    assert redactor.redact("TCK-123456") == ("<TICKET_ID>", Counter({"ticket_id": 1}))
