"""The release ledger: immutable, numbered entries in S3, and the rollback rule."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from sdeliver.errors import OperationFailed
from sdeliver.ledger import Entry, Ledger
from sdeliver.project import Project


@pytest.fixture
def project(make_project: Any) -> Project:
    project: Project = make_project()
    s3 = boto3.client("s3", region_name=project.region)
    s3.create_bucket(Bucket=project.artifact_bucket)
    # Versioned, as reconcile makes the artifact bucket.
    s3.put_bucket_versioning(
        Bucket=project.artifact_bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    return project


def s3_body(project: Project, key: str) -> dict[str, Any]:
    s3 = boto3.client("s3", region_name=project.region)
    return json.loads(s3.get_object(Bucket=project.artifact_bucket, Key=key)["Body"].read())


def deploy(ledger: Ledger, release: str, outcome: str = "succeeded", **more: Any) -> Entry:
    current = ledger.current()
    return ledger.append(
        action=more.pop("action", "deploy"), outcome=outcome, release=release,
        lambda_version=more.pop("lambda_version", "1"),
        replaces=current.seq if current else None, **more,
    )


def rollback(ledger: Ledger) -> Entry:
    current = ledger.current()
    assert current is not None
    target = ledger.previous_release(current)
    assert target is not None, "nothing to roll back to"
    return ledger.append(
        action="rollback", outcome="succeeded", release=target.release,
        lambda_version=target.lambda_version, replaces=current.seq,
    )


def test_append_assigns_1_2_3(project: Project) -> None:
    ledger = Ledger(project, "test")
    seqs = [deploy(ledger, f"r{n}").seq for n in range(3)]
    assert seqs == [1, 2, 3]


def test_an_entry_is_stored_whole_as_sorted_json_under_a_zero_padded_key(project: Project) -> None:
    entry = deploy(Ledger(project, "test"), "r1", code_sha256="abc=", source_revision="deadbeef")
    key = "sdeliver/dromedary/releases/test/0000000001.json"
    body = s3_body(project, key)
    assert list(body) == sorted(body)
    assert body["release"] == "r1"
    assert body["seq"] == 1
    assert body["env"] == "test"
    assert body["code_sha256"] == "abc="
    assert body["who"] == entry.who and entry.who.startswith("arn:")
    assert entry.when.endswith("Z")


def test_environments_have_separate_ledgers(project: Project) -> None:
    deploy(Ledger(project, "test"), "r1")
    assert deploy(Ledger(project, "prod"), "r1").seq == 1
    assert [e.release for e in Ledger(project, "test").entries()] == ["r1"]


def test_append_after_losing_a_race_writes_the_next_number(project: Project) -> None:
    ledger = Ledger(project, "test")
    rival = {"seq": 1, "env": "test", "action": "deploy", "outcome": "succeeded", "release": "theirs"}
    key = ledger.key(1)
    other_writer = boto3.client("s3", region_name=project.region)
    raced: list[bool] = []

    def claim_first(params: dict[str, Any], **_: Any) -> None:
        # Another sdeliver claims seq 1 between our listing and our write.
        if not raced and params["Key"] == key:
            raced.append(True)
            other_writer.put_object(
                Bucket=project.artifact_bucket, Key=key, Body=json.dumps(rival).encode()
            )

    client = project.aws.client("s3")
    client.meta.events.register("provide-client-params.s3.PutObject", claim_first)
    try:
        ours = deploy(ledger, "ours")
    finally:
        client.meta.events.unregister("provide-client-params.s3.PutObject", claim_first)

    assert raced
    assert ours.seq == 2
    assert s3_body(project, key)["release"] == "theirs", "seq 1 must not be overwritten"
    assert [e.release for e in Ledger(project, "test").entries()] == ["ours", "theirs"]


def test_an_existing_entry_is_never_overwritten_even_when_a_listing_misses_it(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "first")
    monkeypatch.setattr(ledger, "seqs", lambda: [])  # a listing that has not caught up
    second = deploy(ledger, "second")
    versions = boto3.client("s3", region_name=project.region).list_object_versions(
        Bucket=project.artifact_bucket, Prefix=ledger.key(1)
    )
    assert second.seq == 2
    assert len(versions["Versions"]) == 1
    assert s3_body(project, ledger.key(1))["release"] == "first"


def _stub_put_error(stubber: Stubber, code: str, status: int) -> None:
    stubber.add_client_error(
        "put_object", service_error_code=code, service_message="conflict", http_status_code=status
    )


def _stub_listing(stubber: Stubber, keys: list[str]) -> None:
    stubber.add_response(
        "list_objects_v2",
        {"Contents": [{"Key": k} for k in keys], "IsTruncated": False, "KeyCount": len(keys)},
    )


def test_a_409_conditional_request_conflict_is_retried_on_the_same_number(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AWS answers 409 while another conditional write of the key is in flight; that write
    # may still fail, so the number is tried again (moto never answers 409: stubbed).
    monkeypatch.setattr(project.aws, "sleep", lambda _s: None)
    ledger = Ledger(project, "test")
    with Stubber(project.aws.client("s3")) as stubber:
        _stub_listing(stubber, [])
        _stub_put_error(stubber, "ConditionalRequestConflict", 409)
        _stub_listing(stubber, [])
        stubber.add_response("put_object", {"ETag": '"e"'})
        entry = ledger.append(action="deploy", outcome="succeeded", release="r1", who="arn:x")
        stubber.assert_no_pending_responses()
    assert entry.seq == 1


def test_a_412_moves_past_the_number_even_if_the_listing_lags(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(project.aws, "sleep", lambda _s: None)
    ledger = Ledger(project, "test")
    with Stubber(project.aws.client("s3")) as stubber:
        _stub_listing(stubber, [])
        _stub_put_error(stubber, "PreconditionFailed", 412)
        theirs = Entry(seq=1, env="test", action="deploy", outcome="succeeded", release="r0",
                       id="another-writer").to_json().encode()
        stubber.add_response(  # is seq 1 our own earlier attempt? No: another writer's
            "get_object", {"Body": StreamingBody(io.BytesIO(theirs), len(theirs))},
            {"Bucket": project.artifact_bucket, "Key": ledger.key(1)},
        )
        _stub_listing(stubber, [])
        stubber.add_response(
            "put_object", {"ETag": '"e"'}, {
                "Bucket": project.artifact_bucket, "Key": ledger.key(2), "Body": ANY,
                "ContentType": "application/json", "IfNoneMatch": "*",
            },
        )
        entry = ledger.append(action="deploy", outcome="succeeded", release="r1", who="arn:x")
    assert entry.seq == 2


def test_append_gives_up_after_a_bounded_number_of_lost_races(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(project.aws, "sleep", lambda _s: None)
    ledger = Ledger(project, "test")
    with Stubber(project.aws.client("s3")) as stubber:
        _stub_listing(stubber, [])
        for _ in range(20):
            _stub_put_error(stubber, "ConditionalRequestConflict", 409)
            _stub_listing(stubber, [])
        with pytest.raises(OperationFailed, match="attempts lost to other writers"):
            ledger.append(action="deploy", outcome="succeeded", release="r1", who="arn:x")


def test_append_rejects_fields_the_ledger_does_not_know(project: Project) -> None:
    with pytest.raises(OperationFailed, match="relase"):
        Ledger(project, "test").append(action="deploy", outcome="succeeded", relase="r1")


def test_entries_are_newest_first(project: Project) -> None:
    ledger = Ledger(project, "test")
    for n in range(1, 4):
        deploy(ledger, f"r{n}")
    assert [e.seq for e in Ledger(project, "test").entries()] == [3, 2, 1]


def test_entries_with_a_limit_read_only_that_many_bodies(project: Project) -> None:
    ledger = Ledger(project, "test")
    for n in range(1, 6):
        deploy(ledger, f"r{n}")
    before = project.aws.stats.operations["GetObject"]
    newest = Ledger(project, "test").entries(limit=2)
    assert [e.release for e in newest] == ["r5", "r4"]
    assert project.aws.stats.operations["GetObject"] - before == 2


def test_an_empty_ledger_has_no_latest_or_current(project: Project) -> None:
    ledger = Ledger(project, "test")
    assert ledger.entries() == []
    assert ledger.latest() is None
    assert ledger.current() is None


def test_current_is_the_newest_live_release_not_a_newer_failure(project: Project) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "good")
    deploy(ledger, "broken", outcome="failed")
    deploy(ledger, "flaky", outcome="rolled-back", e2e="failed")
    latest, current = ledger.latest(), ledger.current()
    assert latest is not None and latest.release == "flaky"
    assert current is not None and current.release == "good"


def test_a_canary_step_does_not_make_its_release_current(project: Project) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "old")
    deploy(ledger, "new", action="canary", weights={"2": 0.1})
    current = ledger.current()
    assert current is not None and current.release == "old"


def test_rollback_goes_to_the_release_before(project: Project) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "a")
    b = deploy(ledger, "b")
    previous = ledger.previous_release(b)
    assert previous is not None and previous.release == "a"


def test_rolling_back_twice_goes_further_back_instead_of_bouncing(project: Project) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "z")
    deploy(ledger, "a")
    deploy(ledger, "b")
    assert rollback(ledger).release == "a"
    second = rollback(ledger)
    assert second.release == "z"
    assert ledger.previous_release(second) is None


def test_rollback_skips_failed_deploys(project: Project) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "a")
    deploy(ledger, "x", outcome="failed")
    deploy(ledger, "b")
    deploy(ledger, "y", outcome="rolled-back")
    assert rollback(ledger).release == "a"


def test_a_release_deployed_after_a_rollback_rolls_back_to_the_restored_one(
    project: Project,
) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "z")
    deploy(ledger, "a")
    deploy(ledger, "b")
    rollback(ledger)  # -> a
    deploy(ledger, "c")
    assert rollback(ledger).release == "a"
    assert rollback(ledger).release == "z"


def test_recent_sites_are_the_live_one_then_the_rollback_stack_then_the_newest_others(
    project: Project,
) -> None:
    ledger = Ledger(project, "test")
    for release in ("v", "w", "z", "a"):
        deploy(ledger, release)
    deploy(ledger, "x", outcome="failed")
    deploy(ledger, "b")
    back = rollback(ledger)  # -> a; b is off the stack, x never served
    deploy(ledger, "c", site_release="c-site")  # an entry serving another release's site

    current = ledger.current()
    assert current is not None
    assert ledger.recent_sites(current, 4) == ["c-site", "a", "z", "w"]
    assert ledger.recent_sites(back, 6) == ["a", "z", "w", "v", "c-site", "b"]
    assert ledger.recent_sites(current, 1) == ["c-site"]


def test_there_is_nothing_before_the_first_release(project: Project) -> None:
    ledger = Ledger(project, "test")
    first = deploy(ledger, "a")
    assert ledger.previous_release(first) is None


def test_find_by_seq_or_release(project: Project) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "a", lambda_version="7")
    deploy(ledger, "b")
    deploy(ledger, "a", outcome="failed", lambda_version=None)
    by_seq, by_text, by_release = ledger.find(2), ledger.find("2"), ledger.find("a")
    assert by_seq is not None and by_seq.release == "b"
    assert by_text == by_seq
    assert by_release is not None and by_release.seq == 1 and by_release.lambda_version == "7"
    assert ledger.find("nope") is None
    assert ledger.find(99) is None


def _put_raw(project: Project, key: str, body: bytes) -> None:
    boto3.client("s3", region_name=project.region).put_object(
        Bucket=project.artifact_bucket, Key=key, Body=body
    )


def test_a_corrupt_entry_is_a_clear_error_naming_its_key(project: Project) -> None:
    ledger = Ledger(project, "test")
    _put_raw(project, ledger.key(1), b"{not json")
    with pytest.raises(OperationFailed, match=r"0000000001\.json is corrupt"):
        ledger.entries()


def test_an_entry_missing_required_fields_is_corrupt(project: Project) -> None:
    ledger = Ledger(project, "test")
    _put_raw(project, ledger.key(1), json.dumps({"seq": 1, "env": "test"}).encode())
    with pytest.raises(OperationFailed, match=r"0000000001\.json is corrupt"):
        ledger.latest()


def test_entries_written_by_a_newer_sdeliver_are_read(project: Project) -> None:
    ledger = Ledger(project, "test")
    newer = {
        "seq": 1, "env": "test", "action": "deploy", "outcome": "succeeded", "release": "r1",
        "a_field_from_the_future": {"x": 1},
    }
    _put_raw(project, ledger.key(1), json.dumps(newer).encode())
    latest = ledger.latest()
    assert latest is not None and latest.release == "r1"


def test_other_objects_under_the_prefix_are_not_entries(project: Project) -> None:
    ledger = Ledger(project, "test")
    _put_raw(project, f"{ledger.prefix}notes.txt", b"hello")
    _put_raw(project, f"{ledger.prefix}12.json", b"{}")
    deploy(ledger, "a")
    assert [e.seq for e in ledger.entries()] == [1]


def test_a_lost_answer_to_our_own_write_is_not_written_twice(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first PUT landed but its answer was lost; the retry's 412 finds our own entry.
    ledger = Ledger(project, "test")
    real_call = project.aws.call
    lost = {"done": False}

    def call(service: str, operation: str, **kwargs: Any) -> Any:
        result = real_call(service, operation, **kwargs)
        if operation == "put_object" and not lost["done"]:
            lost["done"] = True
            return real_call(service, operation, **kwargs)  # botocore's retry: 412
        return result

    monkeypatch.setattr(project.aws, "call", call)
    entry = ledger.append(action="deploy", outcome="succeeded", release="r1", who="arn:x")
    assert entry.seq == 1
    assert ledger.seqs() == [1]


# -- the ledger trusts nothing it lists ------------------------------------------------------


def _forge(project: Project, ledger: Ledger, name: str, seq: int, release: str = "evil") -> str:
    key = f"{ledger.prefix}{name}"
    body = {"seq": seq, "env": "test", "action": "deploy", "outcome": "succeeded",
            "release": release, "lambda_version": "666"}
    _put_raw(project, key, json.dumps(body).encode())
    return key


def _keys(project: Project, ledger: Ledger) -> list[str]:
    listing = boto3.client("s3", region_name=project.region).list_objects_v2(
        Bucket=project.artifact_bucket, Prefix=ledger.prefix
    )
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_a_forged_seq_beyond_the_maximum_is_reported_and_never_followed(project: Project) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "a")
    deploy(ledger, "b")
    forged = _forge(project, ledger, "9999999999.json", 9999999999)

    current = ledger.current()
    assert current is not None and current.release == "b"
    assert ledger.find("9999999999") is None and ledger.find("evil") is None
    assert deploy(ledger, "c").seq == 3  # never 10000000000, an 11-digit key
    assert [f"{ledger.prefix}{n:010d}.json" for n in (1, 2, 3)] + [forged] == _keys(
        project, ledger
    )
    [problem] = ledger.problems()
    assert forged in problem and "outside 1..999999999" in problem


def test_a_key_of_another_width_is_reported_and_never_followed(project: Project) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "a")
    eleven = _forge(project, ledger, "00000000002.json", 2)

    assert ledger.seqs() == [1]
    assert deploy(ledger, "b").seq == 2
    [problem] = ledger.problems()
    assert eleven in problem and "not a ledger entry key" in problem


def test_deleted_entries_are_reported_as_gaps_naming_their_keys(project: Project) -> None:
    ledger = Ledger(project, "test")
    for n in range(6):
        deploy(ledger, f"r{n}")
    s3 = boto3.client("s3", region_name=project.region)
    for seq in (2, 4, 5):
        s3.delete_object(Bucket=project.artifact_bucket, Key=ledger.key(seq))

    assert [e.seq for e in ledger.entries()] == [6, 3, 1]
    where = f"s3://{project.artifact_bucket}/{ledger.prefix}"
    assert ledger.problems() == [
        f"{where}0000000002.json is missing: deleted, or skipped by a forged entry "
        "(sdeliver never deletes or skips one)",
        f"{where}0000000004.json to 0000000005.json are missing: deleted, or skipped by a "
        "forged entry (sdeliver never deletes or skips one)",
    ]
    assert deploy(ledger, "r6").seq == 7  # the gaps are never filled in


def test_a_healthy_ledger_has_no_problems(project: Project) -> None:
    ledger = Ledger(project, "test")
    assert ledger.problems() == []
    deploy(ledger, "a")
    deploy(ledger, "b")
    assert ledger.problems() == []


def test_problems_come_from_the_listing_already_made(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "a")
    _put_raw(project, f"{ledger.prefix}notes.txt", b"hello")
    listings = []
    real = project.aws.paginate

    def paginate(*args: Any, **kwargs: Any) -> Any:
        listings.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(project.aws, "paginate", paginate)
    ledger.entries()
    assert len(ledger.problems()) == 1
    assert listings == ["list_objects_v2"]


def test_many_stray_keys_are_named_a_few_and_counted(project: Project) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "a")
    for n in range(8):
        _put_raw(project, f"{ledger.prefix}stray-{n}.json", b"{}")
    problems = Ledger(project, "test").problems()
    assert len(problems) == 6
    assert problems[-1].startswith("and 3 more such problems under s3://")


def test_append_refuses_to_pass_the_maximum_seq(project: Project) -> None:
    from sdeliver.ledger import MAX_SEQ

    ledger = Ledger(project, "test")
    deploy(ledger, "a")
    at_limit = _forge(project, ledger, f"{MAX_SEQ:010d}.json", MAX_SEQ)
    before = _keys(project, ledger)

    with pytest.raises(OperationFailed, match=r"cannot pass seq 999999999") as raised:
        deploy(ledger, "b")
    assert at_limit in raised.value.message and "\n" not in raised.value.message
    assert "aws s3 rm" in (raised.value.hint or "")
    assert _keys(project, ledger) == before
    assert any("0000000002.json to 0999999998.json are missing" in p for p in ledger.problems())


# -- rollback over duplicate entries -----------------------------------------------------


def test_rollback_steps_over_a_second_entry_of_the_same_release(project: Project) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "a")
    deploy(ledger, "b")
    deploy(ledger, "b")  # the same commit again, or deploy --force
    back = rollback(ledger)
    assert back.release == "a"
    assert ledger.previous_release(back) is None  # b is not under a on the stack


def test_a_duplicate_under_the_top_is_one_place_on_the_stack(project: Project) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "a")
    deploy(ledger, "a")
    deploy(ledger, "b")
    first = rollback(ledger)
    assert first.release == "a"
    assert ledger.previous_release(first) is None


def test_redeploying_the_restored_release_does_not_bring_back_the_rolled_back_one(
    project: Project,
) -> None:
    ledger = Ledger(project, "test")
    deploy(ledger, "a")
    deploy(ledger, "b")
    rollback(ledger)  # back to a
    again = deploy(ledger, "a")
    assert ledger.previous_release(again) is None
