"""The move transaction: the one way any release pointer of an environment is moved.

Deploy, promote, rollback, a canary step and the pipeline's actions all move pointers (the
alias's version and weights, the stage's deployment, the release config.json names) this
way:

1. take the environment's lease (renewed by a heartbeat while the command runs);
2. read the ledger's current entry *and* the live pointers; when they disagree and the
   live ones are not already on the release this command moves to (a re-run finishing
   its own interrupted move), record what is live first — an `interrupted` entry when
   the pointers name an sdeliver release, `drifted` when they were changed by hand — so
   history stays true and "put back" means what really served;
3. the command moves the pointers and runs e2e;
4. every outcome is one ledger entry, written only after confirming the lease is still
   ours; on any exception — sdeliver's, botocore's, Ctrl-C, SIGTERM — the pointers are
   put back on what was live and the failed attempt is recorded before the error goes on.
   A second Ctrl-C while putting back stops at once and says what to run.

The record is the truth, or `status` says plainly where it is not (`disagreements`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .. import hosting, parallel
from ..aws import lambda_
from ..errors import EnvironmentLocked, Interrupted, SdeliverError
from ..ledger import Action, Entry, EntryFields, Ledger
from ..lock import EnvironmentLock
from ..project import Project
from ..publish import Published
from ..release import ReleaseStore
from ..resources.api import rest_api_id as api_id
from ..sites import read_published
from .pointers import Pointers, read_pointers

if TYPE_CHECKING:
    from typing_extensions import Unpack

RELEASE_MARK = "sdeliver release "  # how versions and deployments name their release
# An early confirmation of the lease (beside the last site writes) stands for this long;
# after e2e or any longer step the lease is confirmed again before the entry is written.
CONFIRM_FRESH = 2.0
PRUNED_AFTER = ("deploy", "promote", "rollback")  # the moves that make a release live


@dataclass(frozen=True)
class Live:
    """What an environment serves right now, read from AWS."""

    pointers: Pointers
    has_site: bool  # the app declares a site
    site_release: str | None  # the release config.json names (None: none, or unreadable)
    site_dirty: bool = False  # a publish was cut short after config.json was written
    published: Published | None = None  # config.json as read (None: no site)


def read_live(project: Project, env: str) -> Live:
    """Alias and stage (read_pointers) beside config.json: two round trips at once."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sdeliver-live") as pool:
        site = pool.submit(_site, project, env)
        pointers = read_pointers(project, env)
        published = site.result()
    if published is None:
        return Live(pointers, False, None)
    return Live(pointers, True, published.release, published.dirty, published)


def _site(project: Project, env: str) -> Published | None:
    if project.config.site is None:
        return None
    return read_published(project, project.site_bucket(env))


def expected_site(entry: Entry) -> str | None:
    """The release whose config.json the environment should serve after `entry`."""
    if entry.site_release:
        return entry.site_release
    return entry.release if entry.site_digest else None


@dataclass(frozen=True)
class Difference:
    pointer: str  # alias | stage | site
    text: str

    def __str__(self) -> str:
        return self.text


def disagreements(live: Live, entry: Entry | None) -> list[Difference]:
    """Where the live pointers differ from the ledger's current entry, one line each."""
    if entry is None:
        return []
    found = []
    now = live.pointers
    if now.version != entry.lambda_version or now.weights:
        weights = "".join(
            f", {w:.0%} on version {v}" for v, w in sorted(now.weights.items())
        )
        found.append(Difference(
            "alias", f"alias on version {now.version}{weights}, ledger says {entry.lambda_version}"
        ))
    if entry.api_deployment_id and now.deployment_id != entry.api_deployment_id:
        found.append(Difference(
            "stage",
            f"stage on deployment {now.deployment_id}, ledger says {entry.api_deployment_id}",
        ))
    site = expected_site(entry)
    if live.has_site and site is not None:
        if live.site_release is None:
            text = f"site has no config.json naming a release, ledger says {site}"
        elif live.site_release != site:
            text = f"site on release {live.site_release}, ledger says {site}"
        elif live.site_dirty:
            text = f"site on release {site}, but a publish was cut short"
        else:
            text = ""
        if text:
            found.append(Difference("site", text))
    return found


@dataclass
class Found:
    """The release each live pointer names (None: not an sdeliver release, or unknown)."""

    alias: str | None
    stage: str | None
    site: str | None

    def of(self, pointer: str) -> str | None:
        return {"alias": self.alias, "stage": self.stage, "site": self.site}[pointer]


def identify(project: Project, live: Live) -> Found:
    """Which release each live pointer belongs to: versions and deployments sdeliver makes
    say "sdeliver release <id>" in their description; config.json names its release."""
    name = project.function_name
    version = live.pointers.version
    deployment = live.pointers.deployment_id

    def alias_release() -> str | None:
        if version is None:
            return None
        found = lambda_.version_configuration(project.aws, name, version)
        return _named((found or {}).get("Description"))

    def stage_release() -> str | None:
        if deployment is None:
            return None
        rest_api = api_id(project)
        found = project.aws.call(
            "apigateway", "get_deployment", resource=f"deployment {deployment}",
            ignore=("NotFoundException",), restApiId=rest_api, deploymentId=deployment,
        )
        return _named((found or {}).get("description"))

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sdeliver-identify") as pool:
        alias = pool.submit(alias_release)
        stage = pool.submit(stage_release)
        return Found(alias.result(), stage.result(), live.site_release if live.has_site else None)


def _named(description: str | None) -> str | None:
    if description and description.startswith(RELEASE_MARK):
        return description[len(RELEASE_MARK):].split()[0] or None
    return None


@dataclass
class Move:
    """`with Move(project, "test", "deploy", toward=release_id) as move:` — see the module.

    Inside, `move.current` is the ledger entry of what serves (recorded first if it was
    not), `move.before` the live pointers to put back. The command sets `move.on_failure`
    (how to put back and record an attempt that failed) and writes its outcome with
    `move.append(...)`.
    """

    project: Project
    env: str
    command: str
    toward: str | None = None  # the release this command moves to (a re-run continues it)
    wait: float | None = None
    # The entry whose pointers this command restores (promote, rollback): live pointers
    # equal to its are the same move, cut short, whatever their descriptions say.
    toward_entry: Entry | None = None
    current: Entry | None = None
    live: Live | None = None
    recorded: Entry | None = None
    found: Entry | None = None  # the interrupted/drifted entry this move recorded first
    on_failure: Callable[[BaseException], None] | None = None
    beside: Callable[[], Any] | None = None  # run beside taking the lease (see __enter__)
    beside_result: Any = None
    with_reads: tuple[Callable[[], Any], ...] = ()  # read under the lease beside its own
    read_with: list[Any] = field(default_factory=list)
    # From beside's result: (toward, toward_entry), when only that read knows them.
    aim: Callable[[Any], tuple[str | None, Entry | None]] | None = None
    # The ledger as the command already read it (its entries are cached: immutable), so
    # the read under the lease is one listing when nothing was appended meanwhile.
    ledger: Ledger | None = None
    lock: EnvironmentLock = field(init=False)
    _confirming: Future[None] | None = field(default=None, init=False, repr=False)
    _confirmed_at: float = field(default=0.0, init=False, repr=False)
    _put_back_to: Pointers | None = field(default=None, init=False, repr=False)
    put_back: bool = field(default=False, init=False)  # whether a failure was put back

    def __post_init__(self) -> None:
        if self.ledger is None:
            self.ledger = Ledger(self.project, self.env)
        self.lock = EnvironmentLock(self.project, self.env, self.command, wait=self.wait)

    # -- entering: the lease, then the truth about what serves -----------------------------

    def __enter__(self) -> Move:
        # `beside` (reads that do not depend on this environment: promote's source release
        # and its artifacts) runs while the lease is taken and the environment read.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sdeliver-beside")
        beside = pool.submit(self.beside) if self.beside is not None else None
        pool.shutdown(wait=False)
        try:
            self.lock.__enter__()
        except BaseException:
            if beside is not None:
                beside.cancel()
            self.lock.release()  # a Ctrl-C between writing the lease and holding it
            raise
        assert self.ledger is not None
        try:
            # What the ledger says and what serves, side by side, now that nothing else
            # moves; with them, whatever else the command reads under the lease.
            self.current, self.live, *self.read_with = parallel.together(
                self.ledger.current, lambda: read_live(self.project, self.env), *self.with_reads
            )
            if beside is not None:
                self.beside_result = beside.result()
            if self.aim is not None:
                self.toward, self.toward_entry = self.aim(self.beside_result)
            differ = disagreements(self.live, self.current)
            if differ:
                self._record_found(differ)
        except BaseException as err:
            self.lock.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    @property
    def before(self) -> Pointers:
        """What a failure puts back: what served when this command began — or, when it is a
        re-run finishing its own cut-short move, what the ledger's entry served (the live
        pointers are half moved then), with the live alias's revision."""
        assert self.live is not None
        return self._put_back_to or self.live.pointers

    def _record_found(self, differ: list[Difference]) -> None:
        """Record what is live, unless it is this command's own unfinished move."""
        assert self.live is not None and self.current is not None
        found = identify(self.project, self.live)
        if all(self._toward(d, found) for d in differ):
            # A re-run of the move that was cut short: it finishes it now, and a failure
            # goes back to what the ledger's entry served, not to the half-made move.
            current, now = self.current, self.live.pointers
            self._put_back_to = Pointers(
                version=current.lambda_version, weights=dict(current.weights or {}),
                deployment_id=current.api_deployment_id or now.deployment_id,
                alias_revision=now.alias_revision,
            )
            return
        names = [found.of(d.pointer) for d in differ]
        action: Action = "interrupted" if all(names) or self.live.site_dirty else "drifted"
        # Named after the pointers that moved (the site first: what visitors see); the
        # others still serve the ledger's release.
        moved = {d.pointer for d in differ}
        named = [found.of(p) for p in ("site", "alias", "stage") if p in moved]
        release = next((name for name in named if name), self.current.release)
        fields: EntryFields = {
            "release": release,
            "code_sha256": self.current.code_sha256,
            "api_definition_sha256": self.current.api_definition_sha256,
            "site_digest": self.current.site_digest,
            "source_revision": self.current.source_revision,
        }
        if release != self.current.release:
            manifest = ReleaseStore(self.project).manifest(release) or {}
            fields = {
                "release": release,
                "code_sha256": manifest.get("code_sha256"),
                "api_definition_sha256": manifest.get("definition_sha256"),
                "site_digest": manifest.get("site_digest"),
                "source_revision": manifest.get("source_revision"),
            }
        now = self.live.pointers
        site = self.live.site_release if self.live.has_site else None
        who = "a command that did not record it" if action == "interrupted" else "hand"
        self.project.progress.warn(
            f"{self.env} does not serve what the ledger says ({'; '.join(map(str, differ))}): "
            f"recording what serves first (moved by {who})"
        )
        found_here: EntryFields = {
            **fields,
            "action": action,
            "outcome": "succeeded",
            "lambda_version": now.version,
            "api_deployment_id": now.deployment_id,
            "weights": dict(now.weights) or None,
            "site_release": site if site != release else None,
            "replaces": self.current.seq,
            "e2e": "skipped",
            "message": f"found by {self.command}: {'; '.join(map(str, differ))}",
        }
        entry = self.append(**found_here)
        self.found = entry
        self.recorded = None  # the move's own outcome is still to be written
        self.current = entry

    def _toward(self, difference: Difference, found: Found) -> bool:
        """Whether a differing pointer is already where this command moves it."""
        assert self.live is not None
        if difference.pointer == "site" and self.live.site_dirty:
            return True  # a publish cut short: every move publishes the site again, whole
        if self.toward is not None and found.of(difference.pointer) == self.toward:
            return True
        target, now = self.toward_entry, self.live.pointers
        if target is None:
            return False
        if difference.pointer == "alias":
            return now.version == target.lambda_version and not now.weights
        if difference.pointer == "stage":
            return now.deployment_id == target.api_deployment_id
        return self.live.site_release == expected_site(target)

    # -- recording ------------------------------------------------------------------------

    def confirm_early(self) -> None:
        """Start confirming the lease now, beside the command's last writes (config.json):
        `append` then uses that answer, if it is fresh, instead of asking after them."""
        if self._confirming is None:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sdeliver-confirm")
            self._confirming = pool.submit(self._confirm_now)
            pool.shutdown(wait=False)

    def _confirm_now(self) -> None:
        self.lock.confirm()
        self._confirmed_at = time.monotonic()

    def append(self, **fields: Unpack[EntryFields]) -> Entry:
        """Write a ledger entry once the lease is confirmed ours (else EnvironmentLocked):
        by an early confirmation at most CONFIRM_FRESH seconds old, else now. (The entry's
        PUT cannot be conditional on the lease too: S3 has no two-object condition. The
        lease's ttl is what makes the window harmless: only an expired or force-broken
        lease is ever taken over.)"""
        assert self.ledger is not None
        confirming, self._confirming = self._confirming, None
        fresh = False
        if confirming is not None:
            try:
                confirming.result()
                fresh = time.monotonic() - self._confirmed_at <= CONFIRM_FRESH
            except EnvironmentLocked:
                raise
            except SdeliverError:
                fresh = False  # AWS did not answer then: ask again now
        if not fresh:
            self._confirm_now()
        entry = self.ledger.append(**fields)
        self.recorded = entry
        return entry

    # -- leaving: put back and record on any failure ----------------------------------------

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None and self.recorded is None and self.on_failure is not None:
                self._fail(exc)
            elif exc is None:
                self._prune_sites()
        finally:
            self.lock.__exit__(exc_type, exc, tb)
        if isinstance(exc, KeyboardInterrupt):
            where = f" (ledger #{self.recorded.seq})" if self.recorded is not None else ""
            if self.put_back:
                back = self.current.release if self.current is not None else "what it served"
                said = f"{self.env} put back on {back}{where}"
            elif self.recorded is not None:
                said = f"what it moved is recorded{where}"
            else:
                said = f"{self.env} may not be as it was: see 'sdeliver status'{where}"
            raise Interrupted(
                f"{self.command} {self.env}: interrupted; {said}",
                signal_name=getattr(exc, "signal_name", "SIGINT"),
            ) from None

    def _prune_sites(self) -> None:
        """CloudFront hosting: once a release is live and recorded, remove the sites of
        releases beyond `site.retention` from the bucket — still under the lease, so no
        other command uploads or switches meanwhile. Never the live release, those a
        rollback goes back to first, nor the one that served until this move (edge
        locations read the switch a few seconds late). A failure only warns: the release
        is made and recorded."""
        entry, site = self.recorded, self.project.config.site
        if (entry is None or not entry.live or entry.action not in PRUNED_AFTER
                or site is None or site.hosting != "cloudfront"):
            return
        try:
            held = hosting.release_prefixes(self.project, self.project.site_bucket(self.env))
            if len(held) <= site.retention:
                return
            self.lock.confirm()
            assert self.ledger is not None
            keep = self.ledger.recent_sites(entry, site.retention)
            if self.live is not None and self.live.site_release:
                keep.append(self.live.site_release)
            removed = hosting.prune(self.project, self.env, held, keep)
        except SdeliverError as err:
            self.project.progress.warn(
                f"could not remove old site releases of {self.env}: {err.message}")
            return
        if removed:
            self.project.progress.detail(
                f"removed the sites of {len(removed)} older release(s) of {self.env} "
                f"(site.retention {site.retention}): {', '.join(removed)}")

    def _fail(self, exc: BaseException) -> None:
        assert self.on_failure is not None
        try:
            # Putting back is a move too: never over another command that took the lease.
            self.lock.confirm()
        except EnvironmentLocked as err:
            self.project.progress.warn(
                f"not putting {self.env} back: {err.message}; its new holder moves it now"
            )
            return
        except SdeliverError as err:  # AWS unreachable for now: try to put back anyway
            self.project.progress.warn(f"could not confirm the {self.env} lock: {err.message}")
        try:
            self.on_failure(exc)
            self.put_back = True
        except KeyboardInterrupt:
            raise Interrupted(
                f"{self.command} {self.env}: interrupted again while putting {self.env} back: "
                "it may serve a mix of two releases",
                hint=f"run 'sdeliver status' (it shows what serves), then "
                f"'sdeliver rollback --env {self.env}' or deploy again",
                signal_name=getattr(exc, "signal_name", "SIGINT"),
            ) from None
        except SdeliverError as err:  # the step's own error is the one reported
            self.project.progress.warn(f"could not record the failed {self.command}: {err}")


def describe(err: BaseException) -> str:
    """One line for any error: ours carry their message, others their type."""
    if isinstance(err, SdeliverError):
        return err.message
    if isinstance(err, KeyboardInterrupt):
        return f"interrupted ({getattr(err, 'signal_name', 'SIGINT')})"
    return f"{type(err).__name__}: {err}"
