"""Moving an environment's release pointers."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber
from sdeliver.errors import OperationFailed
from sdeliver.operations.environment import move_alias


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
