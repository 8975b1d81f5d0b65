"""Post the gate report as ONE pull-request comment, updated in place on every run.

A comment is ours when a line of it is the report's hidden marker (the
Markdown reporter puts it first). Each run lists the PR's comments, then:

    no marker comment           POST a new one                       -> "created"
    one, same body              write nothing                        -> "unchanged"
    one, other body             PATCH it                             -> "updated"
    several                     PATCH the newest, say so in `notes`  -> "updated"

How GitHub's answers are handled:

    2xx                         done
    403/429 rate limit          wait as told (`retry-after`, or `x-ratelimit-reset`
                                when `x-ratelimit-remaining: 0`, else a minute), at
                                most `max_wait_s`; longer: EvaluationError saying when
    5xx, timeouts, resets       retried with exponential backoff
    401                         ConfigError: the token is invalid or expired
    403 (not a rate limit)      ConfigError naming `permissions: pull-requests: write`
    404                         ConfigError: the PR or repo does not exist, or the token
                                cannot see it
    anything else               EvaluationError with GitHub's message

A POST whose answer is lost (5xx, read timeout, reset) may still have created
the comment, so it is never blindly repeated: the comments are listed again
first, which keeps a flaky API from leaving two reports on one PR.

The token goes into the Authorization header and nowhere else: every message
built here is scrubbed of it, and request headers never go into an error.
"""

from __future__ import annotations

import asyncio
import codecs
import datetime as dt
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from agent_evals import __version__
from agent_evals.credentials import safe_url
from agent_evals.errors import ConfigError, EvaluationError
from agent_evals.providers._http import (
    excerpt,
    join_url,
    malformed,
    parse_retry_after,
    redact,
    server_message,
    transport_error,
)
from agent_evals.record import open_regular
from agent_evals.report.markdown import MARKER
from agent_evals.retry import wait_text

__all__ = [
    "COMMENT_LIMIT",
    "DEFAULT_API_URL",
    "MAX_WAIT_S",
    "CommentResult",
    "PullRequest",
    "api_url_from",
    "comment",
    "find_pull_request",
    "fit_body",
    "read_token",
    "upsert_comment",
]

COMMENT_LIMIT = 65_536
"""The most characters GitHub accepts in a comment body."""
DEFAULT_API_URL = "https://api.github.com"
MAX_WAIT_S = 60.0
"""The longest a rate limit may make us wait before we give up and say when to retry."""

Action = Literal["created", "updated", "unchanged"]
Sleep = Callable[[float], Awaitable[object]]

TOKEN_VARS = ("GITHUB_TOKEN", "GH_TOKEN")
_PERMISSION = "permissions: pull-requests: write"
_NOT_A_PR_HINT = "run on pull_request events, or pass --pr N --repo owner/name"
_TOKEN_HINT = (
    "pass the token to the step with `env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` "
    f"and grant the job `{_PERMISSION}`"
)
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_PULL_REF = re.compile(r"refs/pull/(\d+)/(?:merge|head)")
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_DETAILS_OPEN = re.compile(r"<details\b", re.IGNORECASE)
_DETAILS_CLOSE = re.compile(r"</details\s*>", re.IGNORECASE)
_CUT_NOTE = (
    "\n\n_… cut here: the report is longer than the {limit:,} characters GitHub allows in a comment; "
    "the full report is in the job's artifacts._\n"
)
_PER_PAGE = 100
# 10,000 comments; beyond that something is looping, not a busy PR.
_MAX_PAGES = 100
_BACKOFF_S = 1.0
_MAX_BACKOFF_S = 16.0
# GitHub answers within seconds; a minute means the request is lost, and the retry loop takes over.
_TIMEOUT = httpx.Timeout(60.0, connect=15.0)


@dataclass(frozen=True)
class PullRequest:
    """A pull request to comment on.

    Attributes:
        repo: "owner/name".
        number: the PR number.
    """

    repo: str
    number: int

    def __str__(self) -> str:
        return f"{self.repo}#{self.number}"


@dataclass(frozen=True)
class CommentResult:
    """What `upsert_comment` did.

    Attributes:
        action: "created", "updated" or "unchanged" (nothing written).
        id: the comment's id.
        url: the comment's address on github.com (empty if GitHub did not say).
        notes: things worth a line in the CI log: duplicates left alone, a body
            cut to fit, waits for rate limits and retries.
    """

    action: Action
    id: int
    url: str
    notes: tuple[str, ...] = ()


# --- where to comment ---------------------------------------------------------------------


def find_pull_request(
    environ: Mapping[str, str], *, pr: int | None = None, repo: str | None = None
) -> PullRequest:
    """The pull request this build is for, from the GitHub Actions environment or the options.

    The number comes from `pr`, else the event payload at `GITHUB_EVENT_PATH`
    (`pull_request.number`; `issue.number` for a comment on a PR; `number`),
    else `GITHUB_REF` (`refs/pull/123/merge`). The repository comes from
    `repo`, else `GITHUB_REPOSITORY`, else the payload's `repository.full_name`.

    Args:
        environ: the environment, usually `os.environ`.
        pr: `--pr N`, overriding the environment.
        repo: `--repo owner/name`, overriding the environment.

    Raises:
        ConfigError: the build is not for a pull request (e.g. a push), or the
            repository cannot be told, or an option is malformed.
    """
    if repo is not None:
        repo = _check_repo(repo, "--repo")
    if pr is not None:
        if pr < 1:
            raise ConfigError(
                f"--pr {pr}: not a pull request number", hint="pass the PR's number, e.g. --pr 123"
            )
        target = repo or _env_repo(environ)
        if target is None:
            raise ConfigError(
                f"--pr {pr}: which repository?", hint="pass --repo owner/name, or set GITHUB_REPOSITORY"
            )
        return PullRequest(target, pr)
    event, problem = _read_event(environ)
    number = _number_from_event(event) if event is not None else None
    if number is None:
        match = _PULL_REF.fullmatch(environ.get("GITHUB_REF", ""))
        number = int(match.group(1)) if match and int(match.group(1)) > 0 else None
    if number is None:
        raise ConfigError(_not_a_pr(environ, problem), hint=_NOT_A_PR_HINT)
    target = repo or _env_repo(environ) or _event_repo(event)
    if target is None:
        raise ConfigError(
            f"found pull request #{number} but not its repository",
            hint="set GITHUB_REPOSITORY or pass --repo owner/name",
        )
    return PullRequest(target, number)


def _check_repo(value: str, source: str) -> str:
    value = value.strip()
    # The name goes into URL paths; `..` would walk out of /repos/.
    if not _REPO.fullmatch(value) or any(part in (".", "..") for part in value.split("/")):
        raise ConfigError(f"{source}: {value!r} is not a repository", hint="use the form owner/name")
    return value


def _env_repo(environ: Mapping[str, str]) -> str | None:
    value = environ.get("GITHUB_REPOSITORY", "").strip()
    return _check_repo(value, "GITHUB_REPOSITORY") if value else None


def _event_repo(event: Mapping[str, Any] | None) -> str | None:
    repository = event.get("repository") if event is not None else None
    name = repository.get("full_name") if isinstance(repository, dict) else None
    return _check_repo(name, "GITHUB_EVENT_PATH repository.full_name") if isinstance(name, str) else None


def _read_event(environ: Mapping[str, str]) -> tuple[dict[str, Any] | None, str | None]:
    """The event payload, or None and why it could not be read (None if there is no payload)."""
    path = environ.get("GITHUB_EVENT_PATH", "").strip()
    if not path:
        return None, None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        return None, f"cannot read the event payload {path} ({exc.strerror})"
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"the event payload {path} is not JSON ({exc})"
    if not isinstance(data, dict):
        return None, f"the event payload {path} is not a JSON object"
    return data, None


def _positive_int(value: object) -> int | None:
    # JSON booleans are ints to Python; a PR number never is one.
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _number_from_event(event: Mapping[str, Any]) -> int | None:
    pull = event.get("pull_request")
    if isinstance(pull, dict) and (number := _positive_int(pull.get("number"))):
        return number
    issue = event.get("issue")
    if isinstance(issue, dict):
        # issue_comment fires for plain issues too; only a PR's issue carries `pull_request`.
        return _positive_int(issue.get("number")) if issue.get("pull_request") else None
    return _positive_int(event.get("number")) if "pull_request" in event else None


def _not_a_pr(environ: Mapping[str, str], problem: str | None) -> str:
    event_name = environ.get("GITHUB_EVENT_NAME", "").strip()
    ref = environ.get("GITHUB_REF", "").strip()
    if event_name:
        what = f"this build was triggered by `{event_name}`" + (f" on {ref}" if ref else "")
    elif ref:
        what = f"GITHUB_REF is {ref}"
    else:
        what = "neither GITHUB_EVENT_PATH nor GITHUB_REF names one"
    return f"not a pull request: {what}" + (f"; {problem}" if problem else "")


def read_token(environ: Mapping[str, str]) -> str:
    """The token from `GITHUB_TOKEN`, else `GH_TOKEN`.

    Raises:
        ConfigError: neither is set, or the value cannot go in a header (the
            message never quotes the value).
    """
    for name in TOKEN_VARS:
        # A token pasted from a file often ends in a newline.
        value = environ.get(name, "").strip()
        if not value:
            continue
        if not _HEADER_SAFE.fullmatch(value):
            raise ConfigError(
                f"{name} holds a value that cannot be sent in an HTTP header",
                hint="a space, control or non-ASCII character; check the variable",
            )
        return value
    raise ConfigError("GITHUB_TOKEN is not set (nor GH_TOKEN)", hint=_TOKEN_HINT)


def api_url_from(environ: Mapping[str, str]) -> str:
    """`GITHUB_API_URL` (set by Actions, and on GitHub Enterprise), else https://api.github.com.

    Raises:
        ConfigError: the value is not an http(s) URL.
    """
    value = environ.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(
            f"GITHUB_API_URL is not an http(s) URL: {safe_url(value)}",
            hint="e.g. https://github.example.com/api/v3, or unset it for github.com",
        )
    return value.rstrip("/")


# --- the body -------------------------------------------------------------------------------


def fit_body(body: str, *, marker: str = MARKER, limit: int = COMMENT_LIMIT) -> str:
    """`body` with `marker` first, cut to at most `limit` characters with a closing note.

    The cut falls at a line end, and closes a code fence or `<details>` left
    open, so the note renders as prose rather than inside a block.

    Raises:
        ValueError: `limit` cannot hold even the marker and the note.
    """
    body = body.replace("\r\n", "\n")
    if not body.lstrip().startswith(marker):
        body = f"{marker}\n\n{body}"
    if len(body) <= limit:
        return body
    note = _CUT_NOTE.format(limit=limit)
    budget = limit - len(note)
    while budget > len(marker):
        cut = body[:budget]
        # A line end past the marker; otherwise one enormous line is cut mid-line.
        if (newline := cut.rfind("\n")) > len(marker):
            cut = cut[:newline]
        fitted = cut.rstrip() + _closers(cut) + note
        if len(fitted) <= limit:
            return fitted
        budget -= len(fitted) - limit
    raise ValueError(f"limit {limit:,} is too small for the marker and the truncation note")


def _closers(text: str) -> str:
    """What closes the code fence and the `<details>` blocks open at the end of `text`."""
    fence: str | None = None
    depth = 0
    for line in text.split("\n"):
        if fence is not None:
            stripped = line.strip()
            if len(stripped) >= len(fence) and stripped == fence[0] * len(stripped):
                fence = None
            continue
        if match := _FENCE.match(line):
            fence = match.group(1)
            continue
        depth = max(0, depth + len(_DETAILS_OPEN.findall(line)) - len(_DETAILS_CLOSE.findall(line)))
    # A blank line ends an HTML block, so `</details>` after it is parsed as HTML again.
    return ("\n" + fence if fence else "") + "\n\n</details>" * depth


# --- talking to GitHub ----------------------------------------------------------------------


class _MaybeApplied(Exception):
    """A write failed in a way that may have reached GitHub anyway (5xx, lost answer)."""


class _Api:
    """One upsert's requests: headers, retries, rate limits, and the meaning of failures."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        token: str,
        api_url: str,
        pr: PullRequest,
        sleep: Sleep,
        max_attempts: int,
        max_wait_s: float,
        on_note: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.token = token
        self.api_url = api_url
        self.pr = pr
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.notes: list[str] = []
        self.on_note = on_note

    def note(self, text: str) -> None:
        """Keep `text` for the result, and say it now: a retry's wait is not silence."""
        self.notes.append(text)
        if self.on_note is not None:
            self.on_note(text)

    def __repr__(self) -> str:  # never the token
        return f"_Api(api_url={safe_url(self.api_url)!r}, pr={self.pr!s})"

    def url(self, path: str) -> str:
        return join_url(self.api_url, path)

    def _scrub(self, text: str) -> str:
        return redact(text, self.token)

    async def request(
        self, method: str, url: str, *, body: Any = None, replay_safe: bool = True, allow_404: bool = False
    ) -> httpx.Response:
        """Send one request, retrying what may succeed later.

        Args:
            replay_safe: False for a POST: a failure that may have reached
                GitHub raises `_MaybeApplied` instead of sending it again.
            allow_404: return a 404 instead of raising.

        Raises:
            ConfigError: 401, 403 (not a rate limit), 404.
            EvaluationError: anything else once retries are spent.
            _MaybeApplied: see `replay_safe`.
        """
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": f"agent-evals/{__version__}",
        }
        shown = safe_url(url)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.client.request(method, url, headers=headers, json=body)
            except (httpx.TransportError, UnicodeEncodeError) as exc:
                error = transport_error(exc, shown, secret=self.token)
                if not error.retryable:
                    raise EvaluationError(self._scrub(f"GitHub API: {error}")) from None
                problem = self._scrub(str(error))
                # Only a connection never made is sure not to have delivered the request.
                maybe_applied = not isinstance(
                    exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                )
                wait = _backoff(attempt)
            else:
                if response.is_success or (allow_404 and response.status_code == 404):
                    return response
                problem = f"{_status_line(response)} from {method} {shown}"
                rate_wait = self._rate_limit_wait(response, problem)
                if rate_wait is not None:
                    maybe_applied, wait = False, rate_wait
                elif response.status_code >= 500:
                    maybe_applied = True
                    told = parse_retry_after(response.headers)
                    wait = min(told, self.max_wait_s) if told is not None else _backoff(attempt)
                else:
                    raise self._status_error(method, response)
            if maybe_applied and not replay_safe:
                raise _MaybeApplied(problem)
            if attempt >= self.max_attempts:
                raise EvaluationError(f"GitHub API: {problem} (gave up after {attempt} attempts)")
            self.note(f"{problem}; retrying in {wait_text(wait)}")
            await self.sleep(wait)

    def _rate_limit_wait(self, response: httpx.Response, problem: str) -> float | None:
        """Seconds to wait when `response` is a rate limit, None when it is not one.

        Raises:
            EvaluationError: GitHub asks for a longer wait than `max_wait_s`.
        """
        status = response.status_code
        if status not in (403, 429):
            return None
        headers = response.headers
        # GitHub's documented order: retry-after, then the primary limit's reset, then a minute.
        wait = parse_retry_after(headers)
        if wait is None and headers.get("x-ratelimit-remaining", "").strip() == "0":
            try:
                reset = float(headers.get("x-ratelimit-reset", ""))
            except ValueError:
                reset = None
            if reset is not None:
                wait = max(0.0, reset - time.time()) + 1.0  # + 1 s: GitHub's clock and ours differ
        if wait is None:
            if status == 403 and "rate limit" not in server_message(response).lower():
                return None  # a plain 403: a permission problem
            wait = 60.0
        if wait > self.max_wait_s:
            when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait)
            raise EvaluationError(
                f"GitHub API rate limit: {problem} asks to wait {wait:,.0f}s, longer than the "
                f"{self.max_wait_s:g}s this command waits (retry after {when:%Y-%m-%d %H:%M:%S} UTC)"
            )
        return wait

    def _status_error(self, method: str, response: httpx.Response) -> Exception:
        status = response.status_code
        head = f"{_status_line(response)} from {method} {safe_url(response.request.url)}"
        detail = self._scrub(excerpt(server_message(response)))
        said = f": {detail}" if detail else ""
        if status == 401:
            # GitHub's 401 text is only "Bad credentials"; the hint is what helps.
            return ConfigError(
                f"GitHub refused the token: {head}",
                hint="GITHUB_TOKEN (or GH_TOKEN) is invalid or expired; " + _TOKEN_HINT,
            )
        if status == 403:
            return ConfigError(
                f"GitHub refused to comment on {self.pr}: {head}{said}",
                hint=f"grant the job `{_PERMISSION}`; on pull requests from forks GITHUB_TOKEN is "
                "read-only, so comment from a workflow_run job with --pr N --repo owner/name",
            )
        if status == 404:
            return ConfigError(
                f"pull request {self.pr} not found: {head}",
                hint="check --pr/--repo; GitHub also answers 404 when the token cannot see the repository",
            )
        if 300 <= status <= 399:
            location = response.headers.get("location")
            where = f" to {safe_url(location)}" if location else ""
            return EvaluationError(
                f"GitHub API: {head}: moved{where} (a renamed repository? pass --repo with its new name)"
            )
        return EvaluationError(f"GitHub API: {head}{said}")

    def json(self, response: httpx.Response, want: type[list[Any]] | type[dict[str, Any]]) -> Any:
        """The body parsed as JSON of the expected shape."""
        try:
            data = response.json()
        except (ValueError, UnicodeDecodeError):
            raise malformed(str(response.request.url), "not JSON", response.text, secret=self.token) from None
        if not isinstance(data, want):
            raise malformed(str(response.request.url), f"not a JSON {want.__name__}", data, secret=self.token)
        return data

    async def list_comments(self) -> list[dict[str, Any]]:
        """Every issue comment on the PR, oldest first, following `Link: rel="next"`."""
        owner, name = self.pr.repo.split("/")
        url = self.url(f"repos/{owner}/{name}/issues/{self.pr.number}/comments") + f"?per_page={_PER_PAGE}"
        origin = _origin(httpx.URL(url))
        comments: list[dict[str, Any]] = []
        seen = {url}
        for _ in range(_MAX_PAGES):
            response = await self.request("GET", url)
            comments.extend(c for c in self.json(response, list) if isinstance(c, dict))
            link = response.links.get("next", {}).get("url")
            if not link:
                return comments
            next_url = response.url.join(link)
            # The token goes with every request: never to a host the API base did not name.
            if _origin(next_url) != origin:
                raise EvaluationError(
                    f"GitHub API: the next page of comments is on another host ({safe_url(next_url)}); "
                    f"not sending the token there (check GITHUB_API_URL)"
                )
            url = str(next_url)
            if url in seen:
                raise EvaluationError(f"GitHub API: the comment pages loop back to {safe_url(url)}")
            seen.add(url)
        raise EvaluationError(
            f"GitHub API: more than {_MAX_PAGES * _PER_PAGE:,} comments on {self.pr}; "
            "gave up looking for the report comment"
        )


def _backoff(attempt: int) -> float:
    """The wait after failed attempt `attempt` (from 1): 1, 2, 4, 8, 16 s."""
    # No jitter: one CI job makes a handful of calls, not a thundering herd.
    return float(min(_MAX_BACKOFF_S, _BACKOFF_S * 2.0 ** (attempt - 1)))


def _status_line(response: httpx.Response) -> str:
    reason = response.reason_phrase or httpx.codes.get_reason_phrase(response.status_code)
    return f"{response.status_code} {reason}".rstrip()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _carries_marker(comment: Mapping[str, Any], marker: str) -> bool:
    body = comment.get("body")
    if not isinstance(body, str):
        return False
    # The marker on a line of its own: a reply quoting the report has it after "> ", and is not ours.
    return body.lstrip().startswith(marker) or any(line.strip() == marker for line in body.splitlines())


def _is_bot(comment: Mapping[str, Any]) -> bool:
    user = comment.get("user")
    if not isinstance(user, dict):
        return False
    login = user.get("login")
    return user.get("type") == "Bot" or (isinstance(login, str) and login.endswith("[bot]"))


def _pick(comments: Sequence[dict[str, Any]], marker: str) -> tuple[dict[str, Any] | None, list[int]]:
    """The comment to update (the newest marker comment) and the ids of other marker comments."""
    found = [c for c in comments if _positive_int(c.get("id")) and _carries_marker(c, marker)]
    # The app token's comments come from a bot; a person's paste of the report is not ours to edit.
    # With a personal token our comments are a person's, so fall back to any marker comment.
    bots = [c for c in found if _is_bot(c)]
    found = bots or found
    if not found:
        return None, []
    found.sort(key=lambda c: (str(c.get("created_at") or ""), c["id"]))
    return found[-1], [c["id"] for c in found[:-1]]


def _same_body(existing: object, new: str) -> bool:
    return isinstance(existing, str) and existing.replace("\r\n", "\n") == new


def _result(action: Action, data: Mapping[str, Any], notes: Sequence[str]) -> CommentResult:
    url = data.get("html_url")
    return CommentResult(
        action=action,
        id=_positive_int(data.get("id")) or 0,
        url=url if isinstance(url, str) else "",
        notes=tuple(dict.fromkeys(notes)),  # one line per distinct event, in order
    )


async def upsert_comment(
    pr: PullRequest,
    body: str,
    *,
    token: str,
    api_url: str = DEFAULT_API_URL,
    client: httpx.AsyncClient | None = None,
    marker: str = MARKER,
    max_attempts: int = 5,
    sleep: Sleep = asyncio.sleep,
    max_wait_s: float = MAX_WAIT_S,
    on_note: Callable[[str], None] | None = None,
) -> CommentResult:
    """Create the PR's report comment, or update it in place.

    Args:
        pr: where to comment.
        body: the Markdown report; `marker` is put first if missing, and a body
            over 65,536 characters is cut to fit (see `fit_body`).
        token: a GitHub token allowed to write PR comments.
        api_url: the REST API base (GitHub Enterprise: https://host/api/v3).
        client: an httpx client to use (and not close); by default one is made.
        marker: the hidden line that identifies our comment.
        max_attempts: tries per request, counting the first.
        sleep: how to wait between tries (tests record instead of sleeping).
        max_wait_s: the longest wait a rate limit may impose before we give up.
        on_note: called with each note as it is made (a retry before its wait), so a
            command waiting on GitHub says why; the notes are also in the result.

    Returns:
        What was done, to which comment, and any notes for the log.

    Raises:
        ConfigError: the token is refused (401/403) or the PR cannot be found (404).
        EvaluationError: GitHub kept failing, or rate-limits us for too long.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    text = fit_body(body, marker=marker)
    own_client = client is None
    http = client if client is not None else httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=False)
    api = _Api(
        http,
        token=token,
        api_url=api_url.rstrip("/"),
        pr=pr,
        sleep=sleep,
        max_attempts=max_attempts,
        max_wait_s=max_wait_s,
        on_note=on_note,
    )
    if len(text) < len(body.replace("\r\n", "\n")):
        api.note(f"the report was cut to fit GitHub's {COMMENT_LIMIT:,}-character limit")
    try:
        return await _upsert(api, text, marker)
    finally:
        if own_client:
            await http.aclose()


async def _upsert(api: _Api, text: str, marker: str) -> CommentResult:
    owner, name = api.pr.repo.split("/")
    maybe_posted = False
    problem = ""
    for round_ in range(1, api.max_attempts + 1):
        target, others = _pick(await api.list_comments(), marker)
        if others:
            ids = ", ".join(str(i) for i in others)
            api.note(
                f"{len(others) + 1} comments carry the report marker; used the newest "
                f"({target['id'] if target else '?'}) and left {ids} alone"
            )
        if target is not None:
            if _same_body(target.get("body"), text):
                # After a POST whose answer was lost, finding our body means the POST worked.
                return _result("created" if maybe_posted else "unchanged", target, api.notes)
            response = await api.request(
                "PATCH",
                api.url(f"repos/{owner}/{name}/issues/comments/{target['id']}"),
                body={"body": text},
                allow_404=True,
            )
            if response.status_code != 404:
                return _result("created" if maybe_posted else "updated", api.json(response, dict), api.notes)
            problem = f"comment {target['id']} was deleted while we updated it"
        else:
            try:
                response = await api.request(
                    "POST",
                    api.url(f"repos/{owner}/{name}/issues/{api.pr.number}/comments"),
                    body={"body": text},
                    replay_safe=False,
                )
            except _MaybeApplied as exc:
                maybe_posted = True
                problem = str(exc)
            else:
                return _result("created", api.json(response, dict), api.notes)
        if round_ < api.max_attempts:
            wait = _backoff(round_)
            api.note(f"{problem}; looking again in {wait_text(wait)}")
            await api.sleep(wait)
    raise EvaluationError(
        f"GitHub API: could not post the report on {api.pr}: {problem} (gave up after {api.max_attempts} attempts)"
    )


_REPORT_FIX = "write it with `agent-evals ci --report-md PATH`"
_REPORT_READ_BYTES = 4 * COMMENT_LIMIT + 4
"""The most of a report file read: more characters than a comment holds even at 4 bytes each,
so a longer report is still seen to be too long (and cut, with a note), never read whole."""


def _read_report(path: Path) -> str:
    """The report's text, at most _REPORT_READ_BYTES of it, from a regular file only: a FIFO
    would block the read, and a device such as /dev/zero would never end it.

    Raises:
        ConfigError: missing, not a regular file, unreadable, or not UTF-8 text.
    """
    with open_regular(path, _REPORT_FIX, "report") as fh:
        try:
            data = fh.read(_REPORT_READ_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"cannot read the report ({exc.strerror or exc})", path=path) from None
    cut = len(data) > _REPORT_READ_BYTES
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        # A read cut short may end inside a character: that part is left undecoded, not refused.
        return decoder.decode(data[:_REPORT_READ_BYTES], final=not cut)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the report is not UTF-8 text (byte 0x{data[exc.start : exc.start + 1].hex()} at offset {exc.start})",
            path=path,
            hint=f"{_REPORT_FIX}, which writes UTF-8",
        ) from None


def comment(
    report_path: Path,
    environ: Mapping[str, str],
    *,
    pr: int | None = None,
    repo: str | None = None,
    client: httpx.AsyncClient | None = None,
    sleep: Sleep = asyncio.sleep,
    on_note: Callable[[str], None] | None = None,
) -> CommentResult:
    """Post or update the report comment on this build's PR: what `agent-evals comment` runs.

    Args:
        report_path: the Markdown report (`agent-evals ci --report-md PATH`).
        environ: the environment (`os.environ`): PR, token and API URL come from it.
        pr: `--pr N`, overriding the environment.
        repo: `--repo owner/name`, overriding the environment.
        client: an httpx client to use (tests); by default one is made.
        sleep: how to wait between tries (tests).
        on_note: called with each note as it is made (see `upsert_comment`).

    Raises:
        ConfigError: the report cannot be read, this is not a PR build, the
            token is missing or refused, or the PR is not found (exit 2).
        EvaluationError: GitHub kept failing or rate-limits us for too long (exit 3).
    """
    body = _read_report(Path(report_path))
    if not body.strip():
        raise ConfigError("the report is empty", path=report_path, hint="was `agent-evals ci` interrupted?")
    target = find_pull_request(environ, pr=pr, repo=repo)
    token = read_token(environ)
    api_url = api_url_from(environ)
    return asyncio.run(
        upsert_comment(
            target, body, token=token, api_url=api_url, client=client, sleep=sleep, on_note=on_note
        )
    )
