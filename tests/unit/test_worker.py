"""The pipeline worker on synthetic CodePipeline job events (in-process moto).

moto has no CodePipeline job API: `put_job_success_result` and `put_job_failure_result`
are stubbed with botocore's Stubber on the worker's codepipeline client, and recorded.
Artifacts, the app's function, API, site buckets and ledger are moto.
"""

from __future__ import annotations

import io
import json
import re
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from sdeliver.actions import job_artifacts
from sdeliver.actions.job import Credentials
from sdeliver.actions.worker import handle
from sdeliver.aws import Aws
from sdeliver.config import load_config
from sdeliver.errors import OperationFailed
from sdeliver.ledger import Ledger
from sdeliver.lock import EnvironmentLock
from sdeliver.operations.deploy import deploy
from sdeliver.package import package_directory
from sdeliver.project import Project
from sdeliver.resources import artifacts as bucket
from sdeliver.resources import function

from tests.conftest import provisioned

STORE = "codepipeline-store"  # where CodePipeline keeps this pipeline's artifacts
JOB_KEY = "AKIAJOBCREDENTIALS"


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws
    from sdeliver.local.quirks import _ignore_policy_conditions

    _ignore_policy_conditions()  # moto would apply aws:SecureTransport to its own plain HTTP
    with mock_aws():
        yield


def configure(project_dir: Path, *, e2e: str = "python -c pass") -> Path:
    """The example project, with commands that run here quickly and offline."""
    path = project_dir / "sdeliver.yaml"
    text = path.read_text()
    text = text.replace(
        "python -m pip install -r requirements.txt -t app/vendor --quiet",
        "python -c \"open('app/built.txt', 'w').write('built')\"",
    ).replace("e2e: python -m pytest tests/e2e -q", f"e2e: {e2e}")
    path.write_text(text)
    return path


@pytest.fixture
def app(project_dir: Path, aws: None) -> Project:
    """The example app, provisioned as `init` does (the pipeline itself is not needed)."""
    project = provisioned(configure(project_dir))
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=STORE)
    return project


class Results:
    """The job results the worker reports (stubbed: moto has no CodePipeline job API)."""

    def __init__(self, aws: Aws, operation: str) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.client = aws.client("codepipeline")
        self.stub = Stubber(self.client)
        self.stub.add_response(operation, {})

    def __enter__(self) -> Results:
        self.client.meta.events.register_first(
            "before-parameter-build.codepipeline.*", self._record, unique_id="results")
        self.stub.activate()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stub.deactivate()
        self.client.meta.events.unregister(
            "before-parameter-build.codepipeline.*", unique_id="results")

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def only(self) -> tuple[str, dict[str, Any]]:
        assert len(self.calls) == 1, self.calls
        return self.calls[0]


class Worker:
    """Runs jobs through `handle` with the worker's own Aws and artifact credentials."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.aws = Aws(region="us-east-1")
        self.signed_with: list[str] = []  # access key ids that signed artifact requests
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.jobs = 0

    def _artifact_aws(self, creds: Credentials) -> Aws:
        store = job_artifacts.artifact_aws(creds, region="us-east-1", endpoint_url=None)
        store.client("s3").meta.events.register("before-send.s3.*", self._signed)
        return store

    def _signed(self, request: Any, **_: Any) -> None:
        auth = request.headers.get("Authorization", b"")
        auth = auth.decode() if isinstance(auth, bytes) else auth
        self.signed_with.append(auth.split("Credential=")[1].split("/")[0])

    def put_tree(self, name: str, tree: Path) -> str:
        key = f"dromedary-delivery/{name}/{self.jobs}.zip"
        # As CodePipeline passes an artifact on: every file, .sdeliver/release.json too.
        everything = package_directory(tree, exclude=("__pycache__",)).data
        self.s3.put_object(Bucket=STORE, Key=key, Body=everything)
        return key

    def put_zip(self, name: str, entries: dict[str, bytes], links: dict[str, str] = {}) -> str:  # noqa: B006
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for entry, body in entries.items():
                archive.writestr(entry, body)
            for entry, target in links.items():
                info = zipfile.ZipInfo(entry)
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                archive.writestr(info, target)
        key = f"dromedary-delivery/{name}/{self.jobs}.zip"
        self.s3.put_object(Bucket=STORE, Key=key, Body=buffer.getvalue())
        return key

    def event(self, parameters: str, input_key: str, *, output: str | None = None,
              token: dict[str, Any] | None = None) -> dict[str, Any]:
        self.jobs += 1
        data: dict[str, Any] = {
            "actionConfiguration": {"configuration": {
                "FunctionName": "dromedary-pipeline-worker", "UserParameters": parameters}},
            "inputArtifacts": [{"name": "In", "revision": "a" * 40, "location": {
                "type": "S3", "s3Location": {"bucketName": STORE, "objectKey": input_key}}}],
            "outputArtifacts": [{"name": output, "location": {"type": "S3", "s3Location": {
                "bucketName": STORE, "objectKey": f"dromedary-delivery/{output}/{self.jobs}"}}}]
            if output else [],
            "artifactCredentials": {"accessKeyId": JOB_KEY, "secretAccessKey": "s",
                                    "sessionToken": "t"},
        }
        if token is not None:
            data["continuationToken"] = json.dumps(token)
        return {"CodePipeline.job": {"id": f"job-{self.jobs}", "accountId": "123456789012",
                                     "data": data}}

    def run(self, event: dict[str, Any], *, fails: bool = False) -> tuple[str, dict[str, Any]]:
        operation = "put_job_failure_result" if fails else "put_job_success_result"
        with Results(self.aws, operation) as results:
            try:
                handle(event, aws=self.aws, artifact_aws=self._artifact_aws)
            except Exception as err:
                raise AssertionError(f"unexpected job result: {err}") from None
        return results.only()

    def output(self, event: dict[str, Any], into: Path) -> Path:
        key = event["CodePipeline.job"]["data"]["outputArtifacts"][0]["location"]["s3Location"]
        body = self.s3.get_object(Bucket=STORE, Key=key["objectKey"])["Body"].read()
        zipfile.ZipFile(io.BytesIO(body)).extractall(into)
        return into


@pytest.fixture
def worker(app: Project) -> Worker:
    return Worker(app)


def build_output(worker: Worker, project_dir: Path, tmp_path: Path) -> str:
    """Dependencies then BuildAndPackage through the worker: the BuildOutput's key."""
    event = worker.event("action=dependencies", worker.put_tree("SourceOutput", project_dir),
                         output="DependenciesOutput")
    assert worker.run(event)[0] == "PutJobSuccessResult"
    tree = worker.output(event, tmp_path / "deps")
    event = worker.event("action=build-and-package", worker.put_tree("DependenciesOutput", tree),
                         output="BuildOutput")
    assert worker.run(event)[0] == "PutJobSuccessResult"
    return worker.put_tree("BuildOutput", worker.output(event, tmp_path / "build"))


# -- success ---------------------------------------------------------------------------------


def test_dependencies_runs_the_build_commands_into_its_output(worker, project_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    event = worker.event("action=dependencies", worker.put_tree("SourceOutput", project_dir),
                         output="DependenciesOutput")
    operation, params = worker.run(event)
    assert operation == "PutJobSuccessResult"
    assert params["executionDetails"]["summary"] == "ran 1 build command(s)"
    assert (worker.output(event, tmp_path / "out") / "app" / "built.txt").read_text() == "built"


def test_build_and_package_stores_the_release_and_passes_its_id_on(worker, project_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    event = worker.event("action=build-and-package", worker.put_tree("SourceOutput", project_dir),
                         output="BuildOutput")
    operation, params = worker.run(event)
    assert operation == "PutJobSuccessResult"
    manifest = json.loads((worker.output(event, tmp_path / "o") / ".sdeliver/release.json")
                          .read_text())
    assert params["executionDetails"]["summary"] == f"release {manifest['release']} stored"
    assert manifest["source_revision"] == "a" * 40  # the job's revision, not a git checkout
    from sdeliver.release import ReleaseStore
    assert ReleaseStore(worker.project).manifest(manifest["release"]) is not None


def test_acceptance_actions_release_and_record_it_as_deploy_does(worker, project_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    build = build_output(worker, project_dir, tmp_path)
    for action in ("deploy-app", "deploy-api", "deploy-site", "end-to-end"):
        operation, params = worker.run(worker.event(f"action={action}&env=test", build))
        assert operation == "PutJobSuccessResult", params
    by_worker = Ledger(worker.project, "test").latest()
    by_cli = deploy(worker.project, "prod").seq and Ledger(worker.project, "prod").latest()
    assert by_worker is not None and by_cli is not None
    same = ("action", "outcome", "release", "code_sha256", "api_definition_sha256",
            "site_digest", "site_artifact", "e2e")
    assert {k: getattr(by_worker, k) for k in same} == {k: getattr(by_cli, k) for k in same}
    assert by_worker.lambda_version == function.read_alias(worker.project, "test")[
        "FunctionVersion"]
    assert by_worker.api_deployment_id is not None


# -- failure ---------------------------------------------------------------------------------


def test_a_failed_build_command_fails_the_job_with_what_failed(worker, project_dir) -> None:  # type: ignore[no-untyped-def]
    text = (project_dir / "sdeliver.yaml").read_text()
    (project_dir / "sdeliver.yaml").write_text(
        text.replace("python -c \"open('app/built.txt', 'w').write('built')\"", "exit 7"))
    event = worker.event("action=dependencies", worker.put_tree("SourceOutput", project_dir),
                         output="DependenciesOutput")
    operation, params = worker.run(event, fails=True)
    assert operation == "PutJobFailureResult"
    assert params["failureDetails"]["type"] == "JobFailed"
    assert params["failureDetails"]["message"].startswith("build command failed (exit 7): exit 7")


def test_a_deploy_action_without_a_release_says_which_artifact_it_needs(worker, project_dir) -> None:  # type: ignore[no-untyped-def]
    event = worker.event("action=deploy-app&env=test", worker.put_tree("SourceOutput", project_dir))
    _, params = worker.run(event, fails=True)
    assert "has no .sdeliver/release.json" in params["failureDetails"]["message"]
    assert "BuildOutput" in params["failureDetails"]["message"]


def test_failed_end_to_end_puts_the_environment_back_and_fails_the_job(worker, project_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = build_output(worker, project_dir, tmp_path / "1")
    for action in ("deploy-app", "deploy-api", "deploy-site", "end-to-end"):
        worker.run(worker.event(f"action={action}&env=test", first))
    before = function.read_alias(worker.project, "test")["FunctionVersion"]
    (project_dir / "app" / "app.py").write_text("def handler(e, c):\n    return {}\n")
    text = (project_dir / "sdeliver.yaml").read_text()
    (project_dir / "sdeliver.yaml").write_text(text.replace("e2e: python -c pass", "e2e: exit 1", 1))
    second = build_output(worker, project_dir, tmp_path / "2")
    for action in ("deploy-app", "deploy-api", "deploy-site"):
        worker.run(worker.event(f"action={action}&env=test", second))
    _, params = worker.run(worker.event("action=end-to-end&env=test", second), fails=True)
    assert "e2e failed; test restored to" in params["failureDetails"]["message"]
    assert function.read_alias(worker.project, "test")["FunctionVersion"] == before
    assert Ledger(worker.project, "test").latest().outcome == "rolled-back"


def test_unknown_actions_fail_with_the_actions_there_are(worker, project_dir) -> None:  # type: ignore[no-untyped-def]
    _, params = worker.run(worker.event("action=deploy-everything&env=test",
                                        worker.put_tree("SourceOutput", project_dir)), fails=True)
    assert params["failureDetails"]["message"] == (
        "UserParameters 'action=deploy-everything&env=test': action must be one of "
        "dependencies, build-and-package, deploy-app, deploy-api, deploy-site, end-to-end")


# -- continuation tokens -----------------------------------------------------------------------


@pytest.fixture
def locked(project_dir: Path, aws: None) -> Worker:
    """Only the artifact bucket (the lease lives there), with test's lease held by another."""
    config = load_config(configure(project_dir))
    project = Project(config=config, aws=Aws(region=config.region))
    for change in bucket.plan(project):
        assert change.apply is not None
        change.apply(project)
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=STORE)
    EnvironmentLock(Project(config=config, aws=Aws(region="us-east-1")), "test", "deploy").acquire()
    return Worker(project)


def release_artifact(worker: Worker, project_dir: Path) -> str:
    return worker.put_zip("BuildOutput", {
        "sdeliver.yaml": (project_dir / "sdeliver.yaml").read_bytes(),
        ".sdeliver/release.json": b'{"release": "r-000000000000"}'})


def test_a_locked_environment_continues_with_the_attempt_counted(locked, project_dir) -> None:  # type: ignore[no-untyped-def]
    operation, params = locked.run(locked.event("action=deploy-app&env=test",
                                                release_artifact(locked, project_dir)))
    assert operation == "PutJobSuccessResult"
    assert json.loads(params["continuationToken"]) == {"attempt": 2}
    assert params["executionDetails"]["summary"].startswith("waiting: ")


def test_each_continuation_counts_one_more_attempt(locked, project_dir) -> None:  # type: ignore[no-untyped-def]
    event = locked.event("action=deploy-api&env=test&maxAttempts=10",
                         release_artifact(locked, project_dir), token={"attempt": 4})
    _, params = locked.run(event)
    assert json.loads(params["continuationToken"]) == {"attempt": 5}


def test_at_max_attempts_the_job_fails_instead_of_continuing(locked, project_dir) -> None:  # type: ignore[no-untyped-def]
    event = locked.event("action=deploy-site&env=test&maxAttempts=3",
                         release_artifact(locked, project_dir), token={"attempt": 3})
    operation, params = locked.run(event, fails=True)
    assert operation == "PutJobFailureResult"
    message = params["failureDetails"]["message"]
    assert message.startswith("gave up after 3 attempts (maxAttempts=3): ")
    assert "locked" in message


def test_a_token_that_is_not_sdelivers_fails_the_job(worker, project_dir) -> None:  # type: ignore[no-untyped-def]
    event = worker.event("action=dependencies", worker.put_tree("SourceOutput", project_dir))
    event["CodePipeline.job"]["data"]["continuationToken"] = "{}"
    _, params = worker.run(event, fails=True)
    assert params["failureDetails"]["message"] == "the continuation token is not sdeliver's: '{}'"


# -- artifacts ---------------------------------------------------------------------------------


def test_artifacts_are_read_and_written_with_the_jobs_credentials(worker, project_dir) -> None:  # type: ignore[no-untyped-def]
    event = worker.event("action=dependencies", worker.put_tree("SourceOutput", project_dir),
                         output="DependenciesOutput")
    own: list[str] = []
    worker.aws.client("s3").meta.events.register(
        "before-parameter-build.s3.*", lambda params, **_: own.append(params.get("Bucket")))
    worker.run(event)
    assert worker.signed_with == [JOB_KEY, JOB_KEY]  # GetObject of the input, PutObject of the output
    assert STORE not in own  # the worker's own role never touches the pipeline's artifacts


@pytest.mark.parametrize(
    ("entry", "why"),
    [("../outside.txt", "climbs out with '..'"), ("/etc/cron.d/x", "is an absolute path"),
     ("app/../../x", "climbs out with '..'"), ("C:/windows/x", "is an absolute path")],
)
def test_unsafe_archive_entries_are_refused(tmp_path: Path, entry: str, why: str) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", b"fine")
        zf.writestr(entry, b"evil")
    with pytest.raises(OperationFailed, match=re.escape(f"artifact entry '{entry}' {why}: refused")):
        job_artifacts.extract(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "ok.txt").exists()  # nothing is extracted at all
    assert not (tmp_path / "outside.txt").exists()


def test_a_link_out_of_the_artifact_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("app/secrets")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "../../../etc/passwd")
    with pytest.raises(OperationFailed, match=re.escape("is a link to '../../../etc/passwd', outside")):
        job_artifacts.extract(archive, tmp_path / "out")


def test_a_link_inside_the_artifact_is_kept(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("app/real.py", b"x = 1\n")
        info = zipfile.ZipInfo("app/alias.py")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "real.py")
    job_artifacts.extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "app" / "alias.py").read_text() == "x = 1\n"


def test_an_unsafe_input_artifact_fails_the_job(worker) -> None:  # type: ignore[no-untyped-def]
    key = worker.put_zip("SourceOutput", {"sdeliver.yaml": b"app: x\n", "../../evil": b"!"})
    _, params = worker.run(worker.event("action=dependencies", key), fails=True)
    assert params["failureDetails"]["message"] == "artifact entry '../../evil' climbs out with '..': refused"


def test_the_worker_may_read_only_config_json_of_the_site_buckets(make_project) -> None:  # type: ignore[no-untyped-def]
    # Publishing a release its bucket holds already is one GET of config.json, not a listing.
    from sdeliver.resources import worker as worker_resource

    project = make_project()
    statements = worker_resource.role(project).policies["sdeliver-worker"]["Statement"]
    reads = [s for s in statements if "s3:GetObject" in json.dumps(s["Action"])
             and any(project.site_bucket(env) in json.dumps(s["Resource"])
                     for env in project.config.environments)]
    assert [r["Resource"] for r in reads] == [[
        f"arn:aws:s3:::{project.site_bucket(env)}/config.json"
        for env in project.config.environments]]
