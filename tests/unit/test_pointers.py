"""Moving an environment's release pointers."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber
from sdeliver.errors import OperationFailed
from sdeliver.operations.pointers import move_alias


def test_a_moved_alias_is_a_conflict_not_a_silent_overwrite(make_project) -> None:  # type: ignore[no-untyped-def]
    # moto ignores RevisionId, so AWS's answer to a stale one is stubbed for this client only.
    project = make_project()
    lam = project.aws.client("lambda")
    with Stubber(lam) as stub:
        stub.add_client_error(
            "update_alias",
            service_error_code="PreconditionFailedException",
            service_message="The RevisionId provided does not match the latest RevisionId",
            http_status_code=412,
            expected_params={
                "FunctionName": "dromedary-app",
                "Name": "prod",
                "FunctionVersion": "7",
                "RoutingConfig": {"AdditionalVersionWeights": {}},
                "RevisionId": "stale-revision",
            },
        )
        stub.add_response(
            "get_alias", {"Name": "prod", "FunctionVersion": "6", "RevisionId": "theirs"},
            expected_params={"FunctionName": "dromedary-app", "Name": "prod"},
        )
        with pytest.raises(OperationFailed, match="alias prod was changed by someone else"):
            move_alias(project, "prod", "7", revision_id="stale-revision")
        stub.assert_no_pending_responses()


def test_moving_an_alias_clears_canary_weights(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    lam = project.aws.client("lambda")
    with Stubber(lam) as stub:
        stub.add_response(
            "update_alias",
            {"Name": "prod", "FunctionVersion": "7"},
            expected_params={
                "FunctionName": "dromedary-app",
                "Name": "prod",
                "FunctionVersion": "7",
                "RoutingConfig": {"AdditionalVersionWeights": {}},
            },
        )
        move_alias(project, "prod", "7")
        stub.assert_no_pending_responses()


def _stale_revision(stub: Stubber, weights: dict[str, float]) -> None:
    stub.add_client_error(
        "update_alias", service_error_code="PreconditionFailedException",
        service_message="The RevisionId provided does not match the latest RevisionId",
        http_status_code=412,
        expected_params={"FunctionName": "dromedary-app", "Name": "prod", "FunctionVersion": "7",
                         "RoutingConfig": {"AdditionalVersionWeights": weights},
                         "RevisionId": "before-our-move"},
    )


def test_a_retried_alias_move_that_already_happened_is_accepted(make_project) -> None:  # type: ignore[no-untyped-def]
    # Our first UpdateAlias went through, its answer was lost, botocore retried with the
    # RevisionId that our own move made stale: the alias is where we wanted it.
    project = make_project()
    with Stubber(project.aws.client("lambda")) as stub:
        _stale_revision(stub, {"6": 0.25})
        stub.add_response("get_alias", {
            "Name": "prod", "FunctionVersion": "7", "RevisionId": "after-our-move",
            "RoutingConfig": {"AdditionalVersionWeights": {"6": 0.25}}})
        move_alias(project, "prod", "7", weights={"6": 0.25}, revision_id="before-our-move")
        stub.assert_no_pending_responses()


def test_an_alias_at_the_target_version_with_other_weights_is_still_a_conflict(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    with Stubber(project.aws.client("lambda")) as stub:
        _stale_revision(stub, {})
        stub.add_response("get_alias", {
            "Name": "prod", "FunctionVersion": "7", "RevisionId": "theirs",
            "RoutingConfig": {"AdditionalVersionWeights": {"6": 0.5}}})
        with pytest.raises(OperationFailed, match="changed by someone else"):
            move_alias(project, "prod", "7", revision_id="before-our-move")
