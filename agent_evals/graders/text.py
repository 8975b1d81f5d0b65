"""Text graders: `contains` (substrings) and `regex` (a pattern).

Both look at the whole output text, or at one field of the parsed JSON output
(`field`); a non-string field is searched as compact JSON text.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NamedTuple

from pydantic import Field, model_validator

from agent_evals._regex import compile_pattern
from agent_evals.errors import GraderError
from agent_evals.graders import base
from agent_evals.graders._common import (
    FieldPath,
    OneOrMany,
    RegexPattern,
    as_text,
    cannot_read,
    expected_value,
    one_line,
    quote,
    read_output,
    regex_flags,
)
from agent_evals.graders.base import Grade, GraderBase, Sample
from agent_evals.models import GraderSpec


class ContainsOptions(base.Options):
    """Options of `contains`."""

    field: FieldPath | None = Field(default=None, description="Path into the parsed JSON output.")
    value: str | None = Field(default=None, min_length=1, description="One substring to look for.")
    values: OneOrMany[str] | None = Field(default=None, description="Several substrings.")
    mode: Literal["all", "any"] = Field(default="all", description="Whether all values or any one must hold.")
    case_sensitive: bool = False
    negate: bool = Field(default=False, description="Look for absence instead of presence.")
    expected_field: FieldPath | None = Field(
        default=None, description="With no value(s): path into the case's expected value to look for."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ContainsOptions:
        if self.value is not None and self.values is not None:
            raise ValueError("set either 'value' or 'values', not both")
        if self.expected_field is not None and (self.value is not None or self.values is not None):
            raise ValueError("'expected_field' is only used when neither 'value' nor 'values' is set")
        if self.values is not None and not self.values:
            raise ValueError("'values' is empty: list at least one substring")
        if self.values is not None and any(not v for v in self.values):
            raise ValueError("'values' must not contain an empty string (it is found in any text)")
        return self


class _Needles(NamedTuple):
    """The values `contains` looks for: as written, as compared, and as quoted in a reason."""

    values: list[str]
    compared: list[str]
    quoted: list[str]

    @classmethod
    def of(cls, values: list[str], case_sensitive: bool) -> _Needles:
        compared = values if case_sensitive else [v.casefold() for v in values]
        return cls(values, compared, [quote(v) for v in values])


def _listed(needles: _Needles, present: list[bool], found: bool) -> str:
    """`quote_all` of the values found (or missing), from the values quoted once."""
    return ", ".join([q for q, p in zip(needles.quoted, present, strict=True) if p == found])


class Contains(GraderBase):
    """Pass when the text contains the values (or, with `negate`, does not).

    `mode: all` asks every value to hold (score = fraction that hold); `mode:
    any` asks one (score 1 or 0). With `negate` a value "holds" when it is
    absent, so `negate` + `all` means "none of these", and `negate` + `any`
    means "at least one of these is missing". Matching ignores case unless
    `case_sensitive`. With neither `value` nor `values`, the case's expected
    value (a string or a list of strings) is looked for.
    """

    Options: ClassVar[type[base.Options]] = ContainsOptions
    options: ContainsOptions

    def __init__(self, spec: GraderSpec, options: Any) -> None:
        super().__init__(spec, options)
        opts = self.options
        self.needs_expected = opts.value is None and opts.values is None
        # Values from the options are the same for every case: fold and quote them once.
        self._fixed: _Needles | None = None
        if not self.needs_expected:
            values = [opts.value] if opts.value is not None else list(opts.values or ())
            self._fixed = _Needles.of(values, opts.case_sensitive)

    def expected_path(self) -> str | None:
        return self.options.expected_field or self.options.field

    def _needles(self, sample: Sample) -> _Needles:
        if self._fixed is not None:
            return self._fixed
        opts = self.options
        wanted = expected_value(sample.case, opts.expected_field, opts.field)
        needles = [as_text(v) for v in (wanted if isinstance(wanted, list) else [wanted])]
        if not needles or any(not n for n in needles):
            raise GraderError(
                f"case '{sample.case.id}' has an empty expected value (it is found in any text)"
            )
        return _Needles.of(needles, opts.case_sensitive)

    async def grade(self, sample: Sample) -> Grade:
        """Look for the values in the output.

        Raises:
            GraderError: the values come from the case's expected value and it
                is missing or empty.
        """
        opts = self.options
        needles = self._needles(sample)
        found_value, why_not = read_output(sample, opts.field)
        if why_not is not None:
            return cannot_read(why_not)
        text = as_text(found_value)
        haystack = text if opts.case_sensitive else text.casefold()
        present = [n in haystack for n in needles.compared]
        holds = [p != opts.negate for p in present]
        if opts.mode == "all":
            score = sum(holds) / len(holds)
            passed = all(holds)
        else:
            passed = any(holds)
            score = 1.0 if passed else 0.0
        details = {
            "values": list(needles.values),
            "present": [n for n, p in zip(needles.values, present, strict=True) if p],
            "mode": opts.mode,
            "negate": opts.negate,
        }
        return Grade(
            score=score, passed=passed, reason=self._reason(needles, present, passed), details=details
        )

    def _reason(self, needles: _Needles, present: list[bool], passed: bool) -> str:
        opts = self.options
        where = f"{opts.field}: " if opts.field else ""
        if opts.negate and passed:
            what = f"does not contain {_listed(needles, present, False)}"
        elif opts.negate:
            what = (
                f"contains forbidden {_listed(needles, present, True)}"
                if opts.mode == "all"
                else f"contains all of {_listed(needles, present, True)}"
            )
        elif passed:
            what = f"contains {_listed(needles, present, True)}"
        elif opts.mode == "any":
            what = f"contains none of {', '.join(needles.quoted)}"
        else:
            what = f"missing {_listed(needles, present, False)}"
        return where + what


class RegexOptions(base.Options):
    """Options of `regex`."""

    field: FieldPath | None = Field(default=None, description="Path into the parsed JSON output.")
    pattern: RegexPattern = Field(description="A Python regular expression.")
    flags: OneOrMany[Literal["ignorecase", "multiline", "dotall"]] = ()
    fullmatch: bool = Field(default=False, description="The whole text must match, not just a part.")


class Regex(GraderBase):
    """Pass when the text matches `pattern` (anywhere, or whole with `fullmatch`)."""

    Options: ClassVar[type[base.Options]] = RegexOptions
    options: RegexOptions

    def __init__(self, spec: GraderSpec, options: Any) -> None:
        super().__init__(spec, options)
        self._regex = compile_pattern(self.options.pattern, regex_flags(self.options.flags))

    async def grade(self, sample: Sample) -> Grade:
        """Match the pattern against the output."""
        opts = self.options
        found_value, why_not = read_output(sample, opts.field)
        if why_not is not None:
            return cannot_read(why_not)
        text = as_text(found_value)
        match = self._regex.fullmatch(text) if opts.fullmatch else self._regex.search(text)
        where = f"{opts.field}: " if opts.field else ""
        shown = f"/{one_line(opts.pattern)}/"
        if match is None:
            verb = "does not fully match" if opts.fullmatch else "does not match"
            return Grade(score=0.0, passed=False, reason=f"{where}{verb} {shown}", details={"match": None})
        return Grade(
            score=1.0,
            passed=True,
            reason=f"{where}matches {shown}",
            details={"match": match.group(0), "span": list(match.span())},
        )
