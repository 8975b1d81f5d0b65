"""The PR comment upsert against a fake GitHub on 127.0.0.1.

`FakeGitHub` implements the three endpoints we use (list with `Link`
pagination, create, update) over `ScriptedServer`, keeping the comments in a
list so a test can check what GitHub would show. Failures are scripted with
`enqueue`, which answers the next request before any route. Waits are recorded
by an injected `sleep`, so nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_evals.errors import ConfigError, EvaluationError
from agent_evals.github import (
    COMMENT_LIMIT,
    CommentResult,
    PullRequest,
    Sleep,
    comment,
    find_pull_request,
    fit_body,
    read_token,
    upsert_comment,
)
from agent_evals.report.markdown import MARKER
from tests.http_server import Request, Response, ScriptedServer

TOKEN = "ghs_plantedSECRET0123456789abcdefXYZ"
REPO = "octo/widgets"
NUMBER = 7
PR = PullRequest(REPO, NUMBER)
LIST_PATH = f"/repos/{REPO}/issues/{NUMBER}/comments"
# GitHub's Link headers name the repository by id, not by name.
PAGED_PATH = f"/repositories/4242/issues/{NUMBER}/comments"


class FakeGitHub:
    """Issue comments on one PR, served the way GitHub's REST API serves them."""

    def __init__(self, server: ScriptedServer, *, page_size: int = 100) -> None:
        self.server = server
        self.page_size = page_size
        self.comments: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._next_id = 1000
        server.route("GET", f"{LIST_PATH}|{PAGED_PATH}", self.list)
        server.route("POST", LIST_PATH, self.create)
        server.route("PATCH", rf"/repos/{REPO}/issues/comments/\d+", self.update)

    def add(self, body: str, *, login: str = "github-actions[bot]", kind: str = "Bot") -> dict[str, Any]:
        with self._lock:
            self._next_id += 1
            item = {
                "id": self._next_id,
                "body": body,
                "user": {"login": login, "type": kind},
                "created_at": f"2024-05-01T10:00:{self._next_id % 60:02d}Z",
                "html_url": f"https://github.com/{REPO}/pull/{NUMBER}#issuecomment-{self._next_id}",
            }
            self.comments.append(item)
            return item

    def marked(self) -> list[dict[str, Any]]:
        return [c for c in self.comments if c["body"].startswith(MARKER)]

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    def list(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response(401, {"message": "Bad credentials"})
        page = int(request.query.get("page", ["1"])[0])
        size = min(int(request.query.get("per_page", ["30"])[0]), self.page_size)
        with self._lock:
            items = self.comments[(page - 1) * size : page * size]
            pages = max(1, -(-len(self.comments) // size))
        headers = {}
        if page < pages:
            base = f"{self.server.url}{PAGED_PATH}?per_page={size}"
            headers["link"] = f'<{base}&page={page + 1}>; rel="next", <{base}&page={pages}>; rel="last"'
        return Response(200, items, headers=headers)

    def create(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response(401, {"message": "Bad credentials"})
        return Response(201, self.add(request.json["body"]))

    def update(self, request: Request) -> Response:
        wanted = int(request.path.rsplit("/", 1)[1])
        with self._lock:
            for item in self.comments:
                if item["id"] == wanted:
                    item["body"] = request.json["body"]
                    return Response(200, item)
        return Response(404, {"message": "Not Found"})


class Sleeps:
    """An injected `sleep` that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def github(http_server: ScriptedServer) -> FakeGitHub:
    return FakeGitHub(http_server)


def upsert(server: ScriptedServer, body: str, *, sleep: Sleep | None = None, **options: Any) -> CommentResult:
    return asyncio.run(
        upsert_comment(PR, body, token=TOKEN, api_url=server.url, sleep=sleep or Sleeps(), **options)
    )


def report(text: str) -> str:
    return f"{MARKER}\n\n{text}\n"


def writes(server: ScriptedServer) -> list[Request]:
    return [r for r in server.requests if r.method in ("POST", "PATCH")]


# --- 1. create, update in place, unchanged ----------------------------------------------------


def test_first_run_creates_then_updates_the_same_comment_then_writes_nothing(
    http_server: ScriptedServer, github: FakeGitHub
) -> None:
    github.add("LGTM", login="alice", kind="User")
    # A reply quoting the report carries the marker too, but after "> ": not ours.
    github.add(f"> {MARKER}\n> ✅ pass\n\nnice", login="bob", kind="User")

    first = upsert(http_server, report("✅ **pass** run 1"))

    assert first.action == "created"
    post = http_server.last
    assert (post.method, post.path) == ("POST", LIST_PATH)
    assert post.json["body"].startswith(MARKER)
    assert post.headers["authorization"] == f"Bearer {TOKEN}"
    assert post.headers["accept"] == "application/vnd.github+json"
    assert post.headers["x-github-api-version"] == "2022-11-28"
    assert post.headers["user-agent"].startswith("agent-evals/")
    assert first.url == f"https://github.com/{REPO}/pull/{NUMBER}#issuecomment-{first.id}"
    assert first.notes == ()

    second = upsert(http_server, report("❌ **fail** run 2"))

    assert (second.action, second.id) == ("updated", first.id)
    assert [(r.method, r.path) for r in writes(http_server)[1:]] == [
        ("PATCH", f"/repos/{REPO}/issues/comments/{first.id}")
    ]
    assert [c["body"] for c in github.marked()] == [report("❌ **fail** run 2")]
    assert len(github.comments) == 3

    third = upsert(http_server, report("❌ **fail** run 2"))

    assert (third.action, third.id) == ("unchanged", first.id)
    assert len(writes(http_server)) == 2  # still only the POST of run 1 and the PATCH of run 2


def test_several_marker_comments_update_the_newest_and_say_so(
    http_server: ScriptedServer, github: FakeGitHub
) -> None:
    old = github.add(report("old"))
    pasted = github.add(report("a person pasted the report"), login="carol", kind="User")
    newest = github.add(report("newer"))

    result = upsert(http_server, report("now"))

    assert (result.action, result.id) == ("updated", newest["id"])
    assert result.notes == (
        f"2 comments carry the report marker; used the newest ({newest['id']}) and left {old['id']} alone",
    )
    assert pasted["body"] == report("a person pasted the report")  # a bot's report wins over a person's
    assert old["body"] == report("old")


def test_a_personal_token_s_own_comment_is_found(http_server: ScriptedServer, github: FakeGitHub) -> None:
    # With a PAT, our earlier comment is a user's, not a bot's.
    mine = github.add(report("old"), login="ci-user", kind="User")

    assert upsert(http_server, report("new")).id == mine["id"]


def test_a_body_without_the_marker_gets_it_on_top(http_server: ScriptedServer, github: FakeGitHub) -> None:
    upsert(http_server, "just a report\n")

    assert github.comments[0]["body"] == f"{MARKER}\n\njust a report\n"
    assert upsert(http_server, "just a report\n").action == "unchanged"


def test_an_injected_client_is_used_and_left_open(http_server: ScriptedServer, github: FakeGitHub) -> None:
    async def twice() -> tuple[str, str, bool]:
        async with httpx.AsyncClient() as client:
            one = await upsert_comment(PR, report("a"), token=TOKEN, api_url=http_server.url, client=client)
            two = await upsert_comment(PR, report("b"), token=TOKEN, api_url=http_server.url, client=client)
            return one.action, two.action, client.is_closed

    assert asyncio.run(twice()) == ("created", "updated", False)


def test_a_comment_deleted_before_the_update_is_created_again(
    http_server: ScriptedServer, github: FakeGitHub
) -> None:
    gone = github.add(report("old"))

    def list_then_delete(request: Request) -> Response:
        answer = github.list(request)
        github.comments.clear()
        return answer

    http_server.enqueue(list_then_delete)
    sleeps = Sleeps()

    result = upsert(http_server, report("new"), sleep=sleeps)

    assert result.action == "created"
    assert result.id != gone["id"]
    assert [r.method for r in http_server.requests] == ["GET", "PATCH", "GET", "POST"]
    assert sleeps.waits == [1.0]


# --- 2. pagination -------------------------------------------------------------------------------


def test_the_marker_comment_on_page_2_of_3_is_found(http_server: ScriptedServer) -> None:
    github = FakeGitHub(http_server, page_size=2)
    for i in range(3):
        github.add(f"chatter {i}", login="alice", kind="User")
    ours = github.add(report("old"))  # the 4th comment: page 2
    github.add("more chatter", login="bob", kind="User")  # page 3

    result = upsert(http_server, report("new"))

    assert (result.action, result.id) == ("updated", ours["id"])
    gets = [r for r in http_server.requests if r.method == "GET"]
    assert [(r.path, r.query.get("page")) for r in gets] == [
        (LIST_PATH, None),
        (PAGED_PATH, ["2"]),
        (PAGED_PATH, ["3"]),
    ]
    assert gets[0].query["per_page"] == ["100"]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in gets)
    assert len(github.marked()) == 1


def test_a_next_link_to_another_host_is_not_followed(http_server: ScriptedServer) -> None:
    http_server.enqueue(
        Response(200, [], headers={"link": '<https://evil.example/steal?page=2>; rel="next"'})
    )

    with pytest.raises(EvaluationError) as caught:
        upsert(http_server, report("x"))

    assert "another host (https://evil.example/steal?page=2); not sending the token there" in str(
        caught.value
    )
    assert http_server.request_count == 1


# --- 3. retries and rate limits ------------------------------------------------------------------


def test_502_and_503_are_retried_with_backoff(http_server: ScriptedServer, github: FakeGitHub) -> None:
    sleeps = Sleeps()
    http_server.enqueue(Response(502, body="<html>Bad Gateway</html>"), Response(503, {"message": "busy"}))

    result = upsert(http_server, report("x"), sleep=sleeps)

    assert result.action == "created"
    assert sleeps.waits == [1.0, 2.0]
    assert [r.method for r in http_server.requests] == ["GET", "GET", "GET", "POST"]
    assert (
        result.notes[0]
        == f"502 Bad Gateway from GET {http_server.url}{LIST_PATH}?per_page=100; retrying in 1s"
    )


def test_each_retry_is_said_before_its_wait(http_server: ScriptedServer, github: FakeGitHub) -> None:
    said: list[str] = []
    heard_before_waiting: list[list[str]] = []

    async def sleep(seconds: float) -> None:
        heard_before_waiting.append(list(said))

    http_server.enqueue(Response(502, body="<html>Bad Gateway</html>"), Response(503, {"message": "busy"}))

    result = upsert(http_server, report("x"), sleep=sleep, on_note=said.append)

    assert result.action == "created"
    assert said == list(result.notes)
    assert len(said) == 2
    assert heard_before_waiting == [said[:1], said[:2]]
    assert said[0].startswith("502 ")
    assert said[0].endswith("; retrying in 1s")
    assert said[1].startswith("503 ")
    assert said[1].endswith("; retrying in 2s")


def test_persistent_5xx_gives_up_with_exit_3(http_server: ScriptedServer, github: FakeGitHub) -> None:
    sleeps = Sleeps()
    http_server.route("GET", LIST_PATH, Response(500, {"message": "oops"}))

    with pytest.raises(EvaluationError) as caught:
        upsert(http_server, report("x"), sleep=sleeps, max_attempts=3)

    assert str(caught.value) == (
        f"GitHub API: 500 Internal Server Error from GET {http_server.url}{LIST_PATH}?per_page=100 "
        "(gave up after 3 attempts)"
    )
    assert caught.value.exit_code == 3
    assert sleeps.waits == [1.0, 2.0]


def test_a_post_that_failed_is_not_blindly_repeated(http_server: ScriptedServer, github: FakeGitHub) -> None:
    # GitHub sometimes creates the comment and still answers 502.
    def create_then_fail(request: Request) -> Response:
        github.create(request)
        return Response(502, body="Bad Gateway")

    http_server.route("POST", LIST_PATH, create_then_fail)
    sleeps = Sleeps()

    result = upsert(http_server, report("x"), sleep=sleeps)

    assert result.action == "created"
    assert [r.method for r in http_server.requests] == ["GET", "POST", "GET"]
    assert len(github.comments) == 1
    assert sleeps.waits == [1.0]


def test_a_post_that_failed_without_creating_is_sent_again(
    http_server: ScriptedServer, github: FakeGitHub
) -> None:
    http_server.enqueue(github.list, Response(503, {"message": "unavailable"}))

    result = upsert(http_server, report("x"))

    assert result.action == "created"
    assert [r.method for r in http_server.requests] == ["GET", "POST", "GET", "POST"]
    assert len(github.comments) == 1


def test_secondary_rate_limit_403_waits_as_told(http_server: ScriptedServer, github: FakeGitHub) -> None:
    sleeps = Sleeps()
    http_server.enqueue(
        Response(
            403,
            {
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
            },
            headers={"retry-after": "1"},
        )
    )

    result = upsert(http_server, report("x"), sleep=sleeps)

    assert result.action == "created"
    assert sleeps.waits == [1.0]


def test_secondary_rate_limit_without_headers_waits_a_minute(
    http_server: ScriptedServer, github: FakeGitHub
) -> None:
    sleeps = Sleeps()
    http_server.enqueue(Response(403, {"message": "You have exceeded a secondary rate limit."}))

    assert upsert(http_server, report("x"), sleep=sleeps).action == "created"
    assert sleeps.waits == [60.0]


def test_primary_rate_limit_waits_for_the_reset(http_server: ScriptedServer, github: FakeGitHub) -> None:
    sleeps = Sleeps()
    reset = int(time.time()) + 3
    http_server.enqueue(
        Response(
            429,
            {"message": "API rate limit exceeded"},
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
        )
    )

    assert upsert(http_server, report("x"), sleep=sleeps).action == "created"
    assert len(sleeps.waits) == 1
    assert 2.0 <= sleeps.waits[0] <= 5.0


def test_a_rate_limit_longer_than_the_cap_says_when_to_retry(
    http_server: ScriptedServer, github: FakeGitHub
) -> None:
    sleeps = Sleeps()
    http_server.enqueue(Response(429, {"message": "slow down"}, headers={"retry-after": "3600"}))

    with pytest.raises(EvaluationError) as caught:
        upsert(http_server, report("x"), sleep=sleeps)

    message = str(caught.value)
    assert message.startswith(
        f"GitHub API rate limit: 429 Too Many Requests from GET {http_server.url}{LIST_PATH}?per_page=100 "
        "asks to wait 3,600s, longer than the 60s this command waits (retry after "
    )
    assert message.endswith(" UTC)")
    assert sleeps.waits == []


def test_a_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()

    with pytest.raises(EvaluationError) as caught:
        asyncio.run(
            upsert_comment(
                PR, "x", token=TOKEN, api_url=f"http://127.0.0.1:{port}", sleep=sleeps, max_attempts=2
            )
        )

    assert str(caught.value).startswith(f"GitHub API: could not connect to http://127.0.0.1:{port}/repos/")
    assert str(caught.value).endswith("(gave up after 2 attempts)")
    assert sleeps.waits == [1.0]


# --- 4. finding the PR -----------------------------------------------------------------------------


def event_env(tmp_path: Path, payload: Mapping[str, Any], **env: str) -> dict[str, str]:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return {"GITHUB_EVENT_PATH": str(path), "GITHUB_REPOSITORY": REPO, **env}


def test_pr_from_a_pull_request_event(tmp_path: Path) -> None:
    env = event_env(
        tmp_path,
        {"action": "synchronize", "number": 12, "pull_request": {"number": 12}},
        GITHUB_EVENT_NAME="pull_request",
        GITHUB_REF="refs/pull/12/merge",
    )

    assert find_pull_request(env) == PullRequest(REPO, 12)


def test_pr_from_an_issue_comment_event(tmp_path: Path) -> None:
    payload = {"action": "created", "issue": {"number": 34, "pull_request": {"url": "..."}}}

    assert find_pull_request(event_env(tmp_path, payload)) == PullRequest(REPO, 34)


def test_an_issue_comment_on_a_plain_issue_is_not_a_pr(tmp_path: Path) -> None:
    env = event_env(tmp_path, {"issue": {"number": 35}}, GITHUB_EVENT_NAME="issue_comment")

    with pytest.raises(ConfigError) as caught:
        find_pull_request(env)

    assert str(caught.value) == (
        "not a pull request: this build was triggered by `issue_comment` "
        "(run on pull_request events, or pass --pr N --repo owner/name)"
    )


def test_pr_from_github_ref_when_there_is_no_event() -> None:
    env = {"GITHUB_REF": "refs/pull/56/merge", "GITHUB_REPOSITORY": REPO}

    assert find_pull_request(env) == PullRequest(REPO, 56)


def test_repository_from_the_event_when_github_repository_is_unset(tmp_path: Path) -> None:
    env = event_env(tmp_path, {"pull_request": {"number": 3}, "repository": {"full_name": "a/b"}})
    del env["GITHUB_REPOSITORY"]

    assert find_pull_request(env) == PullRequest("a/b", 3)


def test_options_override_the_environment(tmp_path: Path) -> None:
    env = event_env(tmp_path, {"pull_request": {"number": 12}})

    assert find_pull_request(env, pr=78, repo="other/repo") == PullRequest("other/repo", 78)
    assert find_pull_request(env, pr=78) == PullRequest(REPO, 78)
    assert find_pull_request(env, repo="other/repo") == PullRequest("other/repo", 12)
    # A workflow_run or push job posting for a PR it was told about.
    assert find_pull_request({}, pr=9, repo="o/n") == PullRequest("o/n", 9)


def test_a_push_build_is_not_a_pr(tmp_path: Path) -> None:
    env = event_env(
        tmp_path,
        {"ref": "refs/heads/main", "head_commit": {"id": "abc"}},
        GITHUB_EVENT_NAME="push",
        GITHUB_REF="refs/heads/main",
    )

    with pytest.raises(ConfigError) as caught:
        find_pull_request(env)

    assert str(caught.value) == (
        "not a pull request: this build was triggered by `push` on refs/heads/main "
        "(run on pull_request events, or pass --pr N --repo owner/name)"
    )
    assert caught.value.exit_code == 2


def test_outside_actions_the_error_says_what_was_looked_at(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        find_pull_request({"GITHUB_EVENT_PATH": str(tmp_path / "missing.json")})

    assert str(caught.value) == (
        "not a pull request: neither GITHUB_EVENT_PATH nor GITHUB_REF names one; cannot read the event "
        f"payload {tmp_path / 'missing.json'} (No such file or directory) "
        "(run on pull_request events, or pass --pr N --repo owner/name)"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pr": 5}, "--pr 5: which repository? (pass --repo owner/name, or set GITHUB_REPOSITORY)"),
        ({"pr": 0, "repo": "o/n"}, "--pr 0: not a pull request number (pass the PR's number, e.g. --pr 123)"),
        ({"pr": 5, "repo": "nonsense"}, "--repo: 'nonsense' is not a repository (use the form owner/name)"),
        ({"pr": 5, "repo": "o/.."}, "--repo: 'o/..' is not a repository (use the form owner/name)"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        find_pull_request({}, **options)

    assert str(caught.value) == message


# --- 5. token, permissions, 404, and the token never shown ---------------------------------------------


def test_missing_token_names_the_variable_and_the_permission() -> None:
    with pytest.raises(ConfigError) as caught:
        read_token({"GITHUB_TOKEN": "  "})

    assert str(caught.value) == (
        "GITHUB_TOKEN is not set (nor GH_TOKEN) (pass the token to the step with "
        "`env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` and grant the job `permissions: pull-requests: write`)"
    )
    assert caught.value.exit_code == 2


def test_token_from_gh_token_and_stripped() -> None:
    assert read_token({"GH_TOKEN": TOKEN + "\n"}) == TOKEN
    assert read_token({"GITHUB_TOKEN": "a", "GH_TOKEN": "b"}) == "a"


def test_a_token_that_cannot_be_a_header_is_refused_without_quoting_it() -> None:
    with pytest.raises(ConfigError) as caught:
        read_token({"GITHUB_TOKEN": "ghs_secret with space"})

    assert "secret" not in str(caught.value)


def test_404_says_the_pr_or_repo_was_not_found(http_server: ScriptedServer) -> None:
    with pytest.raises(ConfigError) as caught:
        upsert(http_server, report("x"))

    assert str(caught.value) == (
        f"pull request {REPO}#{NUMBER} not found: 404 Not Found from GET {http_server.url}{LIST_PATH}?per_page=100 "
        "(check --pr/--repo; GitHub also answers 404 when the token cannot see the repository)"
    )


def test_403_without_a_rate_limit_names_the_permission(
    http_server: ScriptedServer, github: FakeGitHub
) -> None:
    http_server.route("POST", LIST_PATH, Response(403, {"message": "Resource not accessible by integration"}))

    with pytest.raises(ConfigError) as caught:
        upsert(http_server, report("x"))

    assert str(caught.value) == (
        f"GitHub refused to comment on {REPO}#{NUMBER}: 403 Forbidden from POST {http_server.url}{LIST_PATH}: "
        "Resource not accessible by integration (grant the job `permissions: pull-requests: write`; "
        "on pull requests from forks GITHUB_TOKEN is read-only, so comment from a workflow_run job "
        "with --pr N --repo owner/name)"
    )
    assert http_server.request_count == 2  # never retried


def test_401_says_the_token_is_refused(http_server: ScriptedServer, github: FakeGitHub) -> None:
    with pytest.raises(ConfigError) as caught:
        asyncio.run(upsert_comment(PR, "x", token="ghs_wrong", api_url=http_server.url, sleep=Sleeps()))

    assert str(caught.value).startswith("GitHub refused the token: 401 Unauthorized from GET ")
    assert "GITHUB_TOKEN (or GH_TOKEN) is invalid or expired" in str(caught.value)


def everything_shown(exc: BaseException) -> str:
    """Every way an error can reach a person: str, repr, args, a formatted traceback."""
    return "\n".join([str(exc), repr(exc), repr(exc.args), *traceback.format_exception(exc)])


def test_the_token_appears_in_no_output_or_error(
    http_server: ScriptedServer,
    github: FakeGitHub,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log requests at INFO and DEBUG

    def echo(status: int, **headers: str) -> Any:
        # A hostile or buggy server quoting our credentials back at us.
        def handle(request: Request) -> Response:
            said = f"you sent {request.headers.get('authorization')}"
            return Response(status, {"message": said + " rate limit" * (status == 429)}, headers=headers)

        return handle

    report_path = tmp_path / "report.md"
    report_path.write_text(report(f"output quoting {TOKEN}"), encoding="utf-8")
    env = event_env(
        tmp_path,
        {"pull_request": {"number": NUMBER}},
        GITHUB_TOKEN=TOKEN,
        GITHUB_API_URL=http_server.url,
    )
    shown: list[str] = []
    scenarios = [echo(403), echo(404), echo(422), echo(401), echo(429, **{"retry-after": "999"})]
    for scenario in scenarios:
        http_server.enqueue(scenario)
        with pytest.raises((ConfigError, EvaluationError)) as caught:
            comment(report_path, env, sleep=Sleeps())
        print(caught.value, file=sys.stderr)  # what the CLI's error boundary does
        shown.append(everything_shown(caught.value))
    http_server.enqueue(*[echo(500)] * 5)  # every attempt
    with pytest.raises(EvaluationError) as caught:
        comment(report_path, env, sleep=Sleeps())
    shown.append(everything_shown(caught.value))
    http_server.enqueue(echo(502))
    result = comment(report_path, env, sleep=Sleeps())
    shown.append(repr(result))

    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in http_server.requests)  # it was sent
    out, err = capsys.readouterr()
    everything = "\n".join([*shown, out, err, caplog.text])
    assert TOKEN not in everything
    assert "plantedSECRET" not in everything
    assert "you sent Bearer ***" in everything  # the server's words survive, the token does not


# --- 6. size -----------------------------------------------------------------------------------------------


def test_an_oversize_body_is_cut_under_the_limit_with_the_marker_kept() -> None:
    huge = f"{MARKER}\n\n<details>\n<summary>cases</summary>\n\n```text\n" + ("y" * 99 + "\n") * 1_000

    fitted = fit_body(huge)

    assert len(fitted) <= COMMENT_LIMIT
    assert fitted.startswith(MARKER + "\n")
    # The fence and the <details> left open at the cut are closed, so the note renders as prose.
    assert fitted.endswith(
        "y" * 99 + "\n```\n\n</details>\n\n_… cut here: the report is longer than the 65,536 characters "
        "GitHub allows in a comment; the full report is in the job's artifacts._\n"
    )
    assert fit_body(report("small")) == report("small")


def test_one_enormous_line_is_cut_mid_line() -> None:
    fitted = fit_body(MARKER + "\n" + "z" * 200_000)

    assert len(fitted) <= COMMENT_LIMIT
    assert fitted.startswith(MARKER + "\nzzz")


def test_an_oversize_report_is_posted_cut_and_noted(http_server: ScriptedServer, github: FakeGitHub) -> None:
    result = upsert(http_server, report("w" * 70_000))

    posted = http_server.last.json["body"]
    assert len(posted) <= COMMENT_LIMIT
    assert posted.startswith(MARKER)
    assert result.notes == ("the report was cut to fit GitHub's 65,536-character limit",)
    # The cut body is what is compared next time, so an identical rerun writes nothing.
    assert upsert(http_server, report("w" * 70_000)).action == "unchanged"


# --- the sync wrapper the CLI calls ----------------------------------------------------------------------------


def test_comment_reads_the_report_and_the_environment(
    http_server: ScriptedServer, github: FakeGitHub, tmp_path: Path
) -> None:
    report_path = tmp_path / "report.md"
    report_path.write_text(report("✅ pass"), encoding="utf-8")
    env = event_env(
        tmp_path, {"pull_request": {"number": NUMBER}}, GITHUB_TOKEN=TOKEN, GITHUB_API_URL=http_server.url
    )

    assert comment(report_path, env).action == "created"
    assert comment(report_path, env).action == "unchanged"
    assert github.comments[0]["body"] == report("✅ pass")


def test_comment_without_a_report(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        comment(tmp_path / "nope.md", {}, pr=1, repo="o/n")

    assert (
        str(caught.value)
        == f"{tmp_path / 'nope.md'}: report not found (write it with `agent-evals ci --report-md PATH`)"
    )


def test_comment_rejects_a_bad_api_url(tmp_path: Path) -> None:
    report_path = tmp_path / "report.md"
    report_path.write_text("x", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        comment(report_path, {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": "ftp://x"}, pr=1, repo="o/n")

    assert str(caught.value).startswith("GITHUB_API_URL is not an http(s) URL: ftp://x")
