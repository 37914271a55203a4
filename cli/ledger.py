"""The release ledger: one immutable S3 object per release-pointer move of an environment.

Entries live in the artifact bucket at `<prefix>/releases/<env>/<seq>.json`, the sequence
zero-padded to 10 digits so that lexical order is numeric order, and within 1..MAX_SEQ.
The ledger trusts nothing it lists: a key of another shape or a number out of range is
reported (`problems`) and never followed, and so are gaps — sdeliver never deletes an
entry, and its appends never skip a number. Each one is written with
a conditional create (`If-None-Match: *`) in a single PUT: two writers can never claim the
same number, nothing is ever overwritten, and an entry lands whole or not at all.

Outcomes (what the move left the environment serving):
- "succeeded"   the pointers now serve `release`.
- "failed"      the move did not complete; the pointers were left on (or put back to) the
                release that was live before.
- "rolled-back" the move completed, then the same command put the previous release back
                (for example because the end-to-end tests failed).

Only a successful deploy, promote or rollback makes a release live. A canary step records
the routing weights of a shift in progress; its release becomes live with the deploy or
promote entry that finishes the shift, and an abandoned canary ends with a rollback entry.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal, TypedDict, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from .aws import error_code, s3
from .errors import AwsError, OperationFailed

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .project import Project

# interrupted: pointers a command moved without recording it (it died, or was killed),
# found and recorded by the next command; drifted: pointers changed outside sdeliver.
Action = Literal["deploy", "promote", "rollback", "canary", "interrupted", "drifted"]
Outcome = Literal["succeeded", "failed", "rolled-back"]
E2e = Literal["passed", "failed", "skipped"]

# A conditional write lost to another writer: 412 when the key exists, 409 when a
# conditional write of the same key is in flight on AWS.
CONFLICT_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
APPEND_ATTEMPTS = 20
SEQ_DIGITS = 10
# The largest sequence number the ledger follows or writes. A billion moves is beyond any
# real history (one a second for 31 years), so a number above it was forged or typed by
# hand; and it keeps every key the ledger computes (seq + 1, a retry moving past a taken
# number) 10 digits wide, with a leading 0, so width and order can never break.
MAX_SEQ = 10**9 - 1
READ_AHEAD = 16  # ledger bodies fetched at once by `entries`
WALK_AHEAD = 4  # and by a walk back from the newest (current, previous_release)
RECENT_WALK = 4  # entries read per release `recent_sites` looks for, at most
SHOWN_PER_PROBLEM = 5  # stray keys or gaps named one by one; the rest are counted
_NAME = re.compile(rf"(\d{{{SEQ_DIGITS}}})\.json")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime, *, millis: bool = False) -> str:
    """UTC ISO-8601 with a Z: 2026-11-29T10:02:00Z."""
    spec = "milliseconds" if millis else "seconds"
    text = moment.astimezone(timezone.utc).isoformat(timespec=spec)
    return text.replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    # Python 3.10's fromisoformat does not accept the Z suffix.
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def is_conflict(err: BaseException) -> bool:
    return error_code(err) in CONFLICT_CODES


RELEASE_FIELDS = {
    "release", "lambda_version", "code_sha256", "api_deployment_id", "api_definition_sha256",
    "site_digest", "site_artifact", "source_revision", "site_release",
}


class EntryFields(TypedDict, total=False):
    """What a command says in an entry it appends (the ledger adds seq and env; who, when
    and id default to the caller, now and a new id). The fields of `Entry`, by name."""

    action: Action
    outcome: Outcome
    release: str
    lambda_version: str | None
    code_sha256: str | None
    api_deployment_id: str | None
    api_definition_sha256: str | None
    site_digest: str | None
    site_artifact: str | None
    site_release: str | None
    source_revision: str | None
    replaces: int | None
    who: str
    when: str
    weights: dict[str, float] | None
    message: str | None
    e2e: E2e
    id: str | None


class Entry(BaseModel):
    """One pointer move. Unknown keys in stored entries are ignored (newer sdeliver)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    seq: int
    env: str
    action: Action
    outcome: Outcome
    release: str
    lambda_version: str | None = None
    code_sha256: str | None = None
    api_deployment_id: str | None = None
    api_definition_sha256: str | None = None
    site_digest: str | None = None
    site_artifact: str | None = None  # key prefix of the site content under artifacts/
    # The release whose site the environment serves, when not `release`'s (an interrupted
    # move found the alias on one release and config.json on another).
    site_release: str | None = None
    source_revision: str | None = None
    replaces: int | None = None  # seq of the entry whose release this one replaced
    who: str = ""  # the STS caller ARN
    when: str = ""  # UTC ISO-8601 with Z
    weights: dict[str, float] | None = None  # canary routing: lambda version -> weight
    message: str | None = None
    e2e: E2e = "skipped"
    # Unique per append: a retried write whose first attempt landed finds its own entry.
    id: str | None = None

    @property
    def live(self) -> bool:
        """Whether the environment served this entry's release right after it."""
        return self.outcome == "succeeded" and self.action != "canary"

    def release_fields(self) -> EntryFields:
        """What a promote or rollback to this entry's release records again: its pointers."""
        return cast(EntryFields, self.model_dump(include=RELEASE_FIELDS))

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2) + "\n"


class Ledger:
    """The release history of one environment, read from and appended to S3."""

    def __init__(self, project: Project, env: str) -> None:
        self.project = project
        self.env = env
        self.bucket = project.artifact_bucket
        self.prefix = f"{project.prefix}/releases/{env}/"
        self._cache: dict[int, Entry] = {}
        self._problems: list[str] | None = None
        self._newest: int | None = None  # the newest seq of the last listing (or append)
        self._seqs: list[int] | None = None  # the last listing's numbers

    def key(self, seq: int) -> str:
        return f"{self.prefix}{seq:0{SEQ_DIGITS}d}.json"

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # -- reading -------------------------------------------------------------------------

    def seqs(self) -> list[int]:
        """Every entry's sequence number, oldest first, from the keys alone (no bodies).

        Only keys `<10 digits>.json` numbered 1..MAX_SEQ count; the rest, and the gaps
        between the numbers, are kept for `problems` from this same listing."""
        found, strays, beyond = [], [], []
        for item in self.project.aws.paginate(
            "s3", "list_objects_v2", "Contents", resource=f"the {self.env} release ledger",
            Bucket=self.bucket, Prefix=self.prefix,
        ):
            match = _NAME.fullmatch(item["Key"][len(self.prefix):])
            if match is None:
                strays.append(item["Key"])
            elif not 1 <= int(match.group(1)) <= MAX_SEQ:
                beyond.append(item["Key"])
            else:
                found.append(int(match.group(1)))
        found.sort()
        self._problems = self._describe(found, strays, beyond)
        self._newest = found[-1] if found else 0
        self._seqs = found
        return found

    @property
    def newest_seq(self) -> int | None:
        """The newest number this object has listed or written (None before any listing)."""
        return self._newest

    def problems(self) -> list[str]:
        """What is wrong with the ledger's keys, as of the last listing (made now if none):
        keys that are not entries, numbers out of range, missing entries. Never raises for
        them: each is reported, none is followed."""
        if self._problems is None:
            self.seqs()
        assert self._problems is not None
        return list(self._problems)

    def _describe(self, seqs: list[int], strays: list[str], beyond: list[str]) -> list[str]:
        problems = [
            f"{self.where(key)} is not a ledger entry key ({SEQ_DIGITS}-digit number.json); "
            "ignored"
            for key in strays[:SHOWN_PER_PROBLEM]
        ]
        problems += [
            f"{self.where(key)} is numbered outside 1..{MAX_SEQ}, so not by sdeliver; ignored"
            for key in beyond[:SHOWN_PER_PROBLEM]
        ]
        hidden = max(0, len(strays) - SHOWN_PER_PROBLEM) + max(0, len(beyond) - SHOWN_PER_PROBLEM)
        gaps = _gaps(seqs)
        problems += [
            f"{self._span(first, last)} missing: deleted, or skipped by a forged entry "
            "(sdeliver never deletes or skips one)"
            for first, last in gaps[:SHOWN_PER_PROBLEM]
        ]
        hidden += max(0, len(gaps) - SHOWN_PER_PROBLEM)
        if hidden:
            problems.append(f"and {hidden} more such problems under {self.where(self.prefix)}")
        return problems

    def _span(self, first: int, last: int) -> str:
        if first == last:
            return f"{self.where(self.key(first))} is"
        return f"{self.where(self.key(first))} to {self.key(last).rsplit('/', 1)[-1]} are"

    def read(self, seq: int) -> Entry | None:
        if not 1 <= seq <= MAX_SEQ:
            return None  # never follow a number no append of ours can have written
        if seq in self._cache:
            return self._cache[seq]
        key = self.key(seq)
        body = s3.get_bytes(self.project.aws, self.bucket, key)
        if body is None:
            return None
        entry = self._parse(body, key, seq)
        self._cache[seq] = entry  # entries are immutable: a read is good forever
        return entry

    def _parse(self, body: bytes, key: str, seq: int) -> Entry:
        where = f"s3://{self.bucket}/{key}"
        try:
            entry = Entry.model_validate(json.loads(body))
        except (ValueError, ValidationError) as err:
            first = str(err).splitlines()[0]
            raise OperationFailed(
                f"release ledger entry {where} is corrupt: {first}",
                hint="inspect it with 'aws s3 cp'; entries are never rewritten by sdeliver",
            ) from None
        if entry.seq != seq:
            raise OperationFailed(
                f"release ledger entry {where} is corrupt: it says seq {entry.seq}",
                hint="inspect it with 'aws s3 cp'; entries are never rewritten by sdeliver",
            )
        return entry

    def _listed(self) -> list[int]:
        """The numbers of this object's last listing, or a new one: a walk back from an
        entry just found (a rollback's target, a release by id) needs no second listing."""
        if self._seqs is None:
            return self.seqs()
        return self._seqs

    def _newest_first(self, before: int | None = None, *, fresh: bool = True) -> Iterator[Entry]:
        """Entries newest first. Bodies are read WALK_AHEAD at a time, side by side: the
        current release or a rollback's target is rarely the very newest entry's, and one
        round trip for four entries beats four one after another (each is read once:
        entries are immutable and cached)."""
        listed = self.seqs() if fresh else self._listed()
        seqs = [s for s in reversed(listed) if before is None or s < before]
        for start in range(0, len(seqs), WALK_AHEAD):
            batch = seqs[start : start + WALK_AHEAD]
            if len([s for s in batch if s not in self._cache]) > 1:
                with ThreadPoolExecutor(max_workers=len(batch)) as pool:
                    found = list(pool.map(self.read, batch))
            else:
                found = [self.read(seq) for seq in batch]
            yield from (entry for entry in found if entry is not None)

    def entries(self, limit: int | None = None) -> list[Entry]:
        """Newest first; with a limit, only the newest `limit` bodies are read.

        The bodies are read READ_AHEAD at a time: one GET per entry is unavoidable, waiting
        for each before asking for the next is not (`history` of 1,000 entries)."""
        seqs = list(reversed(self.seqs()))[:limit]
        if len(seqs) <= 1:
            found = [self.read(seq) for seq in seqs]
        else:
            with ThreadPoolExecutor(max_workers=min(READ_AHEAD, len(seqs))) as pool:
                found = list(pool.map(self.read, seqs))
        return [entry for entry in found if entry is not None]

    def latest(self) -> Entry | None:
        return next(self._newest_first(), None)

    def current(self) -> Entry | None:
        """The entry of the release the environment serves now, or None before any."""
        return next((e for e in self._newest_first() if e.live), None)

    def find(self, release_or_seq: str | int) -> Entry | None:
        """An entry by seq (int or digits), or the newest entry of a release id.

        For a release id the newest live entry wins over a newer failed one: a failed
        attempt may lack pointers (no API deployment yet) that a live one has.
        """
        if isinstance(release_or_seq, int) or release_or_seq.isdigit():
            return self.read(int(release_or_seq))
        fallback = None
        for entry in self._newest_first():
            if entry.release == release_or_seq:
                if entry.live:
                    return entry
                fallback = fallback or entry
        return fallback

    # -- rollback ------------------------------------------------------------------------

    def previous_release(self, before: Entry) -> Entry | None:
        """The live release before `before`: what a rollback from it goes back to.

        Think of the environment's history as a stack of live releases: a successful
        deploy or promote pushes its release, a successful rollback pops back to the one it
        restored, failed entries and canary steps change nothing. Pushing the release
        already on top (two deploys of one commit, `deploy --force`) does not grow the
        stack. The answer is the nearest entry under `before` on that stack with another
        release. So deploy a, deploy b, rollback gives a; a second rollback gives the
        release before a, never b again (no bouncing); deploy a, deploy b, deploy b,
        rollback gives a, not b again (no standing still).

        Walking back: a rollback entry stands for the entry whose release it restored (the
        newest live entry with that release before the one it replaced, followed again if
        that is itself a rollback); from there, the first live entry further back is it,
        unless it holds `before`'s release: then the walk goes on from that entry.
        """
        origin = self._origin(before)
        while True:
            below = next(
                (e for e in self._newest_first(before=origin.seq, fresh=False) if e.live), None
            )
            if below is None or below.release != before.release:
                return below
            origin = self._origin(below)  # seq only decreases: the walk ends

    def recent_sites(self, current: Entry, count: int) -> list[str]:
        """Up to `count` releases whose site the environment served, in the order a
        retention keeps them: the one `current` serves, then those successive rollbacks go
        back to (the stack, `previous_release`), then the others its newest entries name,
        newest first (a release rolled away from, a failed attempt's upload)."""
        found: list[str] = []

        def add(entry: Entry) -> None:
            site = entry.site_release or entry.release
            if site not in found and len(found) < count:
                found.append(site)

        entry: Entry | None = current
        while entry is not None and len(found) < count:
            add(entry)
            entry = self.previous_release(entry)
        # Bounded: a history of a thousand deploys of one release is not read whole.
        for walked, newer in enumerate(self._newest_first(fresh=False)):
            if len(found) >= count or walked >= count * RECENT_WALK:
                break
            add(newer)
        return found

    def _origin(self, entry: Entry) -> Entry:
        """The deploy or promote whose place on the stack `entry` holds."""
        while entry.action == "rollback":
            bound = entry.replaces if entry.replaces is not None else entry.seq
            restored = next(
                (
                    e for e in self._newest_first(before=min(bound, entry.seq), fresh=False)
                    if e.live and e.release == entry.release
                ),
                None,
            )
            if restored is None:
                return entry  # the history before it is gone: treat it as a push
            entry = restored
        return entry

    # -- writing -------------------------------------------------------------------------

    def append(self, **fields: Unpack[EntryFields]) -> Entry:
        """Write the next entry (seq = latest + 1), retrying on a lost race, never overwriting.

        `who` defaults to the caller's ARN and `when` to now.
        """
        fields.setdefault("who", self.project.aws.caller_arn)
        fields.setdefault("when", iso(utc_now()))
        fields.setdefault("id", uuid.uuid4().hex)
        unknown = sorted(set(fields) - set(Entry.model_fields))
        if unknown:
            raise OperationFailed(f"unknown release ledger fields: {', '.join(unknown)}")
        # The number after the newest this object has listed (under the lease: nobody else
        # appends), else after a fresh listing; the conditional create settles any race.
        if self._newest is None:
            self.seqs()
        assert self._newest is not None
        seq = self._newest + 1
        self._check_room(seq)
        try:
            draft = Entry(seq=seq, env=self.env, **fields)
        except ValidationError as err:
            raise OperationFailed(f"invalid release ledger entry: {err}") from None
        for attempt in range(1, APPEND_ATTEMPTS + 1):
            entry = draft.model_copy(update={"seq": seq})
            key = self.key(seq)
            try:
                self.project.aws.call(
                    "s3", "put_object", resource=f"s3://{self.bucket}/{key}",
                    Bucket=self.bucket, Key=key, Body=entry.to_json().encode(),
                    ContentType="application/json", IfNoneMatch="*",
                )
            except AwsError as err:
                if not is_conflict(err):
                    raise
                mine = self.read(seq) if error_code(err) in ("PreconditionFailed", "412") else None
                if mine is not None and mine.id == entry.id:
                    self._newest = max(self._newest or 0, seq)
                    return mine  # our own earlier attempt landed; its answer was lost
                self.project.aws.log(f"release ledger seq {seq} taken by another writer")
                self.project.aws.sleep(random.uniform(0.05, 0.2) * attempt)  # noqa: S311 - jitter
                seqs = self.seqs()
                # 412: the key exists, so move past it even if a listing lags; 409: the other
                # write may still fail, so the same number may be free again.
                floor = seq + 1 if error_code(err) in ("PreconditionFailed", "412") else seq
                seq = max(floor, (seqs[-1] if seqs else 0) + 1)
                self._check_room(seq)
                continue
            self._cache[seq] = entry
            self._newest = max(self._newest or 0, seq)
            if self._seqs is not None and seq not in self._seqs:
                self._seqs = sorted([*self._seqs, seq])
            return entry
        raise OperationFailed(
            f"could not append to the {self.env} release ledger: "
            f"{APPEND_ATTEMPTS} attempts lost to other writers",
            hint="another sdeliver is releasing this environment; retry when it is done",
        )

    def _check_room(self, seq: int) -> None:
        """Refuse to write past MAX_SEQ: the entry before is forged, not a billion moves."""
        if seq > MAX_SEQ:
            newest = self.where(self.key(seq - 1))
            raise OperationFailed(
                f"the {self.env} release ledger cannot pass seq {MAX_SEQ}: its newest entry "
                f"{newest} is at the limit, which no real history reaches",
                hint=f"inspect it with 'aws s3 cp {newest} -' and, if it is not a move you "
                "made, remove it with 'aws s3 rm'; then retry",
            )


def _gaps(seqs: list[int]) -> list[tuple[int, int]]:
    """The missing runs (first, last) in 1..seqs[-1] of a sorted list of numbers."""
    gaps, expected = [], 1
    for seq in seqs:
        if seq > expected:
            gaps.append((expected, seq - 1))
        expected = seq + 1
    return gaps
