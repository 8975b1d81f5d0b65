"""Redaction of personal data in production traffic before it is sampled into git.

Eval sets are sampled from production logs and committed, so every string a
sampled case carries goes through a `Redactor` first (on by default). Each kind
of personal data is replaced by a placeholder naming the kind, and the number
of replacements per kind is returned so the sampler can report what it removed.

The built-in kinds, in the order they are applied (`KINDS`):

- ``email`` -> ``<EMAIL>``: ``local@domain.tld``; the local part is letters,
  digits and ``. _ % + -``, the domain is one or more dot-terminated labels of
  letters, digits and hyphens, then a TLD of 2-63 letters. ``@handle``, ``a@b`` and
  ``user@localhost`` are not emails.
- ``iban`` -> ``<IBAN>``: 2 letters, 2 check digits and the account part, compact
  or in groups of 4 separated by single spaces; the length must be the country's
  (IBAN registry; 15-34 for a country not in it) and the ISO 13616 mod-97 check
  must hold.
- ``card`` -> ``<CARD>``: 13-19 digits not starting with 0, written as one run
  or in groups separated by single spaces or dashes in a card layout (4-4-4-4
  with a last group of 1-4, or 4-6-4 / 4-6-5), that pass the Luhn check. A number
  that fails Luhn is an order number and stays; so does one of at most 15 digits
  right after a ``+``, which is a phone.
- ``ip`` -> ``<IP>``: a dotted quad whose octets are 0-255 and which is not part
  of a longer dotted number (``1.2.3.4.5``) or word (``v1.2.3.4``); or an IPv6
  address, full or compressed, that the stdlib `ipaddress` accepts and that
  contains a decimal digit.
- ``phone`` -> ``<PHONE>``: 7-15 digits (the E.164 bound) in one of three
  shapes: ``+`` and digits in groups (``+44 20 7946 0958``, ``+1 (415) 555-0132``,
  ``+4915112345678``); a trunk prefix ``0`` with a 1-4 digit area code in
  parentheses or followed by a space, dot, dash or slash, then at least 6
  subscriber digits (``030 1234567``, ``(030) 123 4567``, ``030/1234567``,
  ``06 12 34 56 78``); or North American 3-3-4 with separators
  (``(555) 123-4567``, ``555.123.4567``, ``1-800-555-0199``). Separators are one
  space, dot or dash. A plain run of digits is never a phone: without a ``+`` or a
  separator it is an order number; nor is a 7-digit local number without its
  area code (``555-0132`` reads like a range). Dates (``2026-11-24``,
  ``04.11.2026``), times, versions and ranges such as ``0900-1700`` are not phones.

Extra patterns from the configuration (``{"ticket_id": r"TCK-\\d{6}"}``) become
``<TICKET_ID>`` and are applied first: they are the team's own knowledge of its
data, so they win over a built-in guess (an order id that happens to pass Luhn is
an ``<ORDER_ID>``, not a ``<CARD>``).

Why this order: every kind runs only on the text that earlier kinds left
unredacted, so a span claimed by one kind is never matched again by another.
Emails go first because a local part may hold anything digit-shaped. IBANs go
before cards because the digit groups of an IBAN can form a Luhn-valid card
layout. Cards, IBANs and IP addresses all go before phones, because their digit
groups fit phone layouts (``3782 822463 10005`` is 15 digits in groups,
``192.168.100.200`` is 12 digits separated by dots) and they are checked by a
checksum or a range, which a phone is not.

It runs on every string of up to a million log rows, so every pattern is
compiled once, uses possessive quantifiers or separator-delimited repetition (no
nested quantifiers over overlapping classes, so no catastrophic backtracking),
and a kind is skipped when the text cannot hold it: fewer digits than it needs,
no ``@`` for an email, no ``.`` for an IPv4, no ``::`` and fewer than 7 colons
for an IPv6. Digits are ASCII digits.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from agent_evals.errors import ConfigError

__all__ = ["KINDS", "Redactor", "parse_patterns"]

KINDS: tuple[str, ...] = ("email", "iban", "card", "ip", "phone")
"""The built-in kinds, in the order a `Redactor` applies them (see the module docstring)."""

_Span = tuple[int, int]
_Finder = Callable[[str], Iterator[_Span]]

_NAME = re.compile(r"[a-z][a-z0-9_]*")
# E.164: a phone number has at most 15 digits, country code included.
_E164_MAX_DIGITS = 15
_PATTERN_HINT = r"for example ticket_id=TCK-\d{6}"


def _count_ascii_digits(text: str) -> int:
    # Ten C-level scans beat one Python-level loop over the characters.
    return sum(map(text.count, "0123456789"))


# --- email ------------------------------------------------------------------

# The local part is found by scanning left from each '@' (str.find runs in C, and
# most text has no '@'), the domain by a regex anchored just after it. Local parts
# are maximal runs of their characters, dots included, which keeps the scan
# linear; stray dots ("see...jane@example.com") go with the address rather than
# letting it through.
_EMAIL_LOCAL = frozenset(string.ascii_letters + string.digits + "._%+-")
_EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9\-]*+\.)+[A-Za-z]{2,63}")


def _email_spans(text: str) -> Iterator[_Span]:
    floor = 0  # the end of the last email: a local part never reaches back into it
    at = text.find("@")
    while at != -1:
        start = at
        while start > floor and text[start - 1] in _EMAIL_LOCAL:
            start -= 1
        domain = _EMAIL_DOMAIN.match(text, at + 1)
        if start < at and domain is not None:
            yield start, domain.end()
            floor = domain.end()
        at = text.find("@", max(at + 1, floor))


# --- iban -------------------------------------------------------------------

# Total IBAN length per country, from the SWIFT IBAN registry (as shipped by
# python-stdnum 2.2). A known country must have exactly its length, which is what
# lets a compact IBAN be cut out of a longer token and keeps false positives rare.
_IBAN_LENGTHS: Mapping[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
    "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}  # fmt: skip
_IBAN_MIN_LENGTH = 15
_IBAN_MAX_LENGTH = 34

# The match starts at the check digits (digits are rare in text, so the scan
# skips fast to them) and looks behind for the country code at a token start; the
# IBAN starts 2 characters before the match. A candidate is at most 7 groups of 4
# and a 1-3 tail after the check digits (one more than the 30 of the longest
# account part), so retrying from every token start inside a rejected candidate
# stays linear.
_IBAN = re.compile(
    r"[0-9]{2}(?<=(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2})(?: ?[A-Za-z0-9]{4}){0,7}+(?: ?[A-Za-z0-9]{1,3})?"
)


_IBAN_LETTER_VALUES = str.maketrans({letter: str(10 + i) for i, letter in enumerate(string.ascii_uppercase)})


def _iban_checksum_ok(iban: str) -> bool:
    """ISO 13616 mod-97: with the first four characters moved to the end and the
    letters read as 10-35, the number leaves remainder 1 when divided by 97."""
    return int((iban[4:] + iban[:4]).translate(_IBAN_LETTER_VALUES)) % 97 == 1


def _iban_spans(text: str) -> Iterator[_Span]:
    pos = 0
    while match := _IBAN.search(text, pos):
        start = match.start() - 2
        candidate = text[start : match.end()]
        positions = [start + i for i, char in enumerate(candidate) if char != " "]
        compact = candidate.replace(" ", "").upper()
        known = _IBAN_LENGTHS.get(compact[:2])
        lengths = (known,) if known else range(min(len(compact), _IBAN_MAX_LENGTH), _IBAN_MIN_LENGTH - 1, -1)
        for length in lengths:
            if length > len(compact):
                continue
            end = positions[length - 1] + 1
            # The IBAN must end where a token ends, not in the middle of one.
            if end < len(text) and text[end].isalnum():
                continue
            if _iban_checksum_ok(compact[:length]):
                yield start, end
                pos = end
                break
        else:
            # A token like "AB12" just before an IBAN makes a candidate that
            # swallows it; the real one starts at a later token of the candidate.
            pos = match.start() + 1


# --- card -------------------------------------------------------------------

# A run of digit groups joined by single spaces or dashes. Cards are looked for
# in windows of whole groups inside a run, so a card written right after a
# phone-like prefix ("+1 4111 1111 1111 1111") or a date is still found.
# (A plain class as the first token lets the regex engine skip non-digits fast.)
_DIGIT_RUN = re.compile(r"[0-9][0-9]*+(?:[ \-][0-9]++)*+")
_DIGIT_GROUP = re.compile(r"[0-9]++")
_CARD_MIN_DIGITS = 13
_CARD_MAX_DIGITS = 19
_CARD_MAX_GROUPS = 5
# Each digit of an even position from the right, doubled, with the digits of the product summed.
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")


def _luhn_ok(digits: str) -> bool:
    """The Luhn check: doubling every second digit from the right, the digit sum is a multiple of 10."""
    total = sum(map(int, digits[-1::-2])) + sum(map(int, digits[-2::-2].translate(_LUHN_DOUBLED)))
    return total % 10 == 0


def _card_layout(sizes: Sequence[int]) -> bool:
    """Whether digit groups of these sizes are laid out the way cards are printed."""
    if not _CARD_MIN_DIGITS <= sum(sizes) <= _CARD_MAX_DIGITS:
        return False
    if len(sizes) == 1 or tuple(sizes) in ((4, 6, 4), (4, 6, 5)):
        return True
    return len(sizes) in (4, 5) and all(size == 4 for size in sizes[:-1]) and 1 <= sizes[-1] <= 4


def _card_window(text: str, groups: Sequence[_Span], first: int, after_plus: bool) -> int | None:
    """The last group of the longest card that starts at group `first`, or None."""
    start = groups[first][0]
    size = groups[first][1] - start
    # No card number starts with 0 (ISO/IEC 7812 gives 0 to no card issuer), so a
    # zero-padded number is an id. Every layout starts with a group of 4 or is a
    # single group: most windows end here.
    if text[start] == "0" or (size != 4 and not _CARD_MIN_DIGITS <= size <= _CARD_MAX_DIGITS):
        return None
    # Longest window first, so a 19-digit card is not cut to a 16-digit prefix.
    for last in range(min(len(groups), first + _CARD_MAX_GROUPS) - 1, first - 1, -1):
        sizes = [end - begin for begin, end in groups[first : last + 1]]
        if not _card_layout(sizes):
            continue
        # "+4915112345678" passes Luhn one time in ten: after a '+', a number
        # short enough to be a phone (E.164) is one.
        if after_plus and sum(sizes) <= _E164_MAX_DIGITS:
            continue
        if _luhn_ok(text[start : groups[last][1]].replace(" ", "").replace("-", "")):
            return last
    return None


def _card_spans(text: str) -> Iterator[_Span]:
    for run in _DIGIT_RUN.finditer(text):
        if run.end() - run.start() < _CARD_MIN_DIGITS:
            continue
        groups = [group.span() for group in _DIGIT_GROUP.finditer(text, run.start(), run.end())]
        after_plus = run.start() > 0 and text[run.start() - 1] == "+"
        first = 0
        while first < len(groups):
            last = _card_window(text, groups, first, after_plus and first == 0)
            if last is None:
                first += 1
            else:
                yield groups[first][0], groups[last][1]
                first = last + 1


# --- ip ---------------------------------------------------------------------

# Not preceded by a word character or a dot, not followed by a digit or ".digit":
# so "1.2.3.4.5" (an OID or a long version) and "v1.2.3.4" are not addresses. The
# lookbehind comes after the first digit so the scan can skip non-digits fast.
_IPV4 = re.compile(r"[0-9](?<![0-9A-Za-z_.][0-9])[0-9]{0,2}\.(?:[0-9]{1,3}\.){2}[0-9]{1,3}(?![0-9]|\.[0-9])")

# Deliberately permissive (times and MAC addresses match it too); `ipaddress`
# decides. Each repetition ends in ':', so the repetition cannot backtrack
# catastrophically. The IPv4 tail is tried first for "::ffff:192.0.2.1".
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z_:.])"
    r"(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{1,4})?"
    r"(?![0-9A-Za-z_:]|\.[0-9])"
)


def _ipv4_spans(text: str) -> Iterator[_Span]:
    for match in _IPV4.finditer(text):
        if all(int(octet) <= 255 for octet in match.group().split(".")):
            yield match.span()


def _is_ipv6(candidate: str) -> bool:
    # An address without a decimal digit ("a::b", "::") is far more likely a C++
    # scope or punctuation than an address anyone needs hidden.
    if not any(char.isdigit() for char in candidate):
        return False
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


def _ipv6_spans(text: str) -> Iterator[_Span]:
    for match in _IPV6.finditer(text):
        start, end = match.span()
        candidate = match.group()
        if _is_ipv6(candidate):
            yield start, end
        # "2001:db8::1: timed out" makes a candidate ending in the sentence's colon.
        elif candidate.endswith(":") and not candidate.endswith("::") and _is_ipv6(candidate[:-1]):
            yield start, end - 1


def _has_ipv6_shape(text: str) -> bool:
    return "::" in text or text.count(":") >= 7


# --- phone ------------------------------------------------------------------

# Three shapes, each anchored on something a bare number lacks: a leading '+', a
# trunk '0' followed by a separator, or the fixed North American 3-3-4 grouping.
# Not preceded by a word character or by "digit." / "digit-", so the tail of a
# longer dotted or dashed number is not read as a phone. The leading lookahead is
# a cheap first-character test that spares most positions the two lookbehinds.
_PHONE = re.compile(
    r"(?=[+(0-9])(?<![0-9A-Za-z_])(?<![0-9][.\-])"
    r"(?:"
    r"\+[0-9]++(?:[ .\-]?(?:\([0-9]{1,4}\)|[0-9]++))*+"
    r"|(?:\((?P<paren_area>0[0-9]{1,4})\) ?|(?P<area>0[0-9]{1,4})[ .\-/])[0-9]++(?:[ .\-][0-9]++)*+"
    r"|(?:1[ .\-]?)?(?:\([0-9]{3}\) ?|[0-9]{3}[ .\-])[0-9]{3}[ .\-][0-9]{4}(?![.\-]?[0-9])"
    r")"
)
_PHONE_MIN_DIGITS = 7
_PHONE_MIN_SUBSCRIBER_DIGITS = 6
# A zero-padded day.month.year (or month.day.year) with a 19xx/20xx year has the
# trunk-prefix shape ("04.11.2026"); such candidates are dates.
_DATE = re.compile(r"(?:0[1-9]|[12][0-9]|3[01])[ .\-/](?:0[1-9]|[12][0-9]|3[01])[ .\-](?:19|20)[0-9]{2}")


def _phone_spans(text: str) -> Iterator[_Span]:
    for match in _PHONE.finditer(text):
        candidate = match.group()
        digits = _count_ascii_digits(candidate)
        # "+1 415 555 0132 12345": a number after the phone, separated by a space,
        # joins the candidate; drop such groups rather than let the phone through.
        # (A dotted or dashed run that long is one number, not a phone.)
        while digits > _E164_MAX_DIGITS and " " in candidate[1:]:
            candidate = candidate[: candidate.rindex(" ")]
            digits = _count_ascii_digits(candidate)
        if not _PHONE_MIN_DIGITS <= digits <= _E164_MAX_DIGITS:
            continue
        area = match.group("area") or match.group("paren_area")
        if area is not None and digits - len(area) < _PHONE_MIN_SUBSCRIBER_DIGITS:
            continue
        if _DATE.fullmatch(candidate):
            continue
        yield match.start(), match.start() + len(candidate)


# --- the redactor -----------------------------------------------------------


@dataclass(frozen=True)
class _Pass:
    """One kind's search: what it finds, what it writes, and when to skip it cheaply."""

    kind: str
    placeholder: str
    find: _Finder
    min_digits: int = 0
    applies: Callable[[str], bool] | None = None


_BUILTIN_PASSES: Mapping[str, tuple[_Pass, ...]] = {
    "email": (_Pass("email", "<EMAIL>", _email_spans, applies=lambda text: "@" in text),),
    # An IBAN's account part may be all letters (Latvia, Qatar), so only its 2 check digits are certain.
    "iban": (_Pass("iban", "<IBAN>", _iban_spans, min_digits=2),),
    "card": (_Pass("card", "<CARD>", _card_spans, min_digits=_CARD_MIN_DIGITS),),
    # IPv6 first: an IPv4-mapped IPv6 address ends in a dotted quad.
    "ip": (
        _Pass("ip", "<IP>", _ipv6_spans, applies=_has_ipv6_shape),
        _Pass("ip", "<IP>", _ipv4_spans, min_digits=4, applies=lambda text: "." in text),
    ),
    "phone": (_Pass("phone", "<PHONE>", _phone_spans, min_digits=_PHONE_MIN_DIGITS),),
}


def _compile_extra(name: str, regex: str) -> re.Pattern[str]:
    """Check a user pattern's name and compile its regex, or raise a ConfigError naming it."""
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"redaction pattern name '{name}' is not a lowercase identifier",
            hint="use lowercase letters, digits and _, starting with a letter, e.g. ticket_id",
        )
    if name in KINDS:
        raise ConfigError(
            f"redaction pattern '{name}' has the name of a built-in kind",
            hint=f"built-in kinds are {', '.join(KINDS)}; pick another name",
        )
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise ConfigError(
            f"redaction pattern {name}={regex} is not a valid regular expression: {exc.msg}{where}",
            hint="patterns use Python re syntax; escape a literal ( ) [ ] { } . + * ? with a backslash",
        ) from None
    if compiled.fullmatch(""):
        raise ConfigError(
            f"redaction pattern {name}={regex} matches the empty string",
            hint="make it match at least one character, e.g. + instead of *",
        )
    return compiled


def _extra_finder(compiled: re.Pattern[str]) -> _Finder:
    def find(text: str) -> Iterator[_Span]:
        for match in compiled.finditer(text):
            # A zero-width match (a lookahead, \b) has nothing to replace.
            if match.end() > match.start():
                yield match.span()

    return find


def _apply(step: _Pass, segments: list[str], counts: Counter[str]) -> list[str]:
    """Run one pass over the unredacted segments (even indices), splitting those it matches.

    `segments` alternates text that is still unredacted and placeholders, so a
    later pass never sees, or matches across, what an earlier one replaced.
    """
    out: list[str] | None = None
    for index, segment in enumerate(segments):
        spans = list(step.find(segment)) if index % 2 == 0 and segment else []
        if not spans:
            if out is not None:
                out.append(segment)
            continue
        if out is None:
            out = segments[:index]
        last = 0
        for start, end in spans:
            out.append(segment[last:start])
            out.append(step.placeholder)
            last = end
        out.append(segment[last:])
        counts[step.kind] += len(spans)
    return segments if out is None else out


@dataclass(frozen=True)
class Redactor:
    """Replaces personal data in text with placeholders such as ``<EMAIL>``.

    Extra patterns are applied first, in their mapping order; then the built-in
    kinds in the order of `KINDS`, whatever the order of `kinds`, because the
    order is what keeps a card from being read as a phone.

    Attributes:
        kinds: the built-in kinds to apply (a subset of `KINDS`).
        extra: name -> regular expression; a match becomes ``<NAME>`` and is
            counted under ``name``. Names are lowercase identifiers other than
            the built-in kinds.

    Raises:
        ConfigError: on an unknown kind, a bad extra name, or an extra regex that
            does not compile or matches the empty string.
    """

    kinds: tuple[str, ...] = KINDS
    extra: Mapping[str, str] = field(default_factory=dict)
    _passes: tuple[_Pass, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Own copies: the patterns are compiled now, so `extra` must not change later.
        object.__setattr__(self, "kinds", tuple(self.kinds))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))
        for kind in self.kinds:
            if kind not in _BUILTIN_PASSES:
                raise ConfigError(f"unknown redaction kind '{kind}'", hint=f"known kinds: {', '.join(KINDS)}")
        passes = [
            _Pass(name, f"<{name.upper()}>", _extra_finder(_compile_extra(name, regex)))
            for name, regex in self.extra.items()
        ]
        passes += [step for kind in KINDS if kind in self.kinds for step in _BUILTIN_PASSES[kind]]
        object.__setattr__(self, "_passes", tuple(passes))

    def redact(self, text: str) -> tuple[str, Counter[str]]:
        """Redact one string.

        Args:
            text: any text, e.g. one field of a log row.

        Returns:
            The text with each match replaced by its placeholder, and the number
            of replacements per kind (kinds with none are absent).
        """
        counts: Counter[str] = Counter()
        return self._redact(text, counts), counts

    def redact_value(self, value: Any) -> tuple[Any, Counter[str]]:
        """Redact every string inside a JSON-like value.

        Mappings, lists and tuples are rebuilt with their strings redacted;
        mapping keys are field names and are kept as they are. Numbers, booleans
        and None are returned unchanged, even a card number stored as an int:
        only text is redacted.

        Args:
            value: a string, a number, or a nest of mappings and sequences.

        Returns:
            The redacted copy, and the replacements per kind summed over all of it.
        """
        counts: Counter[str] = Counter()
        return self._redact_value(value, counts), counts

    def _redact_value(self, value: Any, counts: Counter[str]) -> Any:
        if isinstance(value, str):
            return self._redact(value, counts)
        if isinstance(value, Mapping):
            return {key: self._redact_value(item, counts) for key, item in value.items()}
        if isinstance(value, list):
            return [self._redact_value(item, counts) for item in value]
        if isinstance(value, tuple):
            return tuple(self._redact_value(item, counts) for item in value)
        return value

    def _redact(self, text: str, counts: Counter[str]) -> str:
        if not text:
            return text
        digits = _count_ascii_digits(text)
        segments = [text]
        for step in self._passes:
            if digits < step.min_digits or (step.applies is not None and not step.applies(text)):
                continue
            segments = _apply(step, segments, counts)
        return segments[0] if len(segments) == 1 else "".join(segments)


def parse_patterns(specs: Sequence[str]) -> dict[str, str]:
    """Parse ``name=regex`` pattern specs from the command line.

    The first ``=`` separates the name from the regex, so the regex may contain
    ``=``. Each regex is compiled here so that a typo fails before sampling starts.

    Args:
        specs: e.g. ``["ticket_id=TCK-\\d{6}"]``.

    Returns:
        name -> regex, in the order given, ready for `Redactor(extra=...)`.

    Raises:
        ConfigError: on a spec without ``=``, an empty name or regex, a name
            given twice, or a pattern `Redactor` would reject.
    """
    patterns: dict[str, str] = {}
    for spec in specs:
        name, equals, regex = spec.partition("=")
        if not equals or not name or not regex:
            raise ConfigError(f"redaction pattern '{spec}' is not name=regex", hint=_PATTERN_HINT)
        if name in patterns:
            raise ConfigError(
                f"redaction pattern '{name}' is given twice", hint="give each pattern its own name"
            )
        _compile_extra(name, regex)
        patterns[name] = regex
    return patterns
