"""The app's DynamoDB tables: each table sdeliver.yaml declares, once per environment.

Named `<app>-<env>-<table>` (Project.table_name), on-demand billing, with the declared
keys, global secondary indexes, TTL attribute and stream, tagged with the app and the
environment. Reconcile repairs what drifts (billing, TTL, stream, indexes, tags); a key
cannot change once a table exists, so a different key fails the plan with what to do.
Tables hold the app's data: `destroy` keeps them, like the artifact bucket, unless
`--purge`; `--prune` never deletes one.
"""

from __future__ import annotations

from typing import Any

from .. import parallel
from ..aws import tags_dict
from ..config import Table, TableAttribute, TableIndex
from ..errors import OperationFailed
from ..plan import Call, Change, FieldChange, call
from ..project import TAG_APP, Project

KIND = "dynamodb-table"
BILLING = "PAY_PER_REQUEST"


def declared(project: Project) -> list[tuple[str, str, Table]]:
    """(environment, table key, table) for every table in every environment, in order."""
    return [
        (env, key, table)
        for env in project.config.environments
        for key, table in project.config.tables.items()
    ]


# -- reading ------------------------------------------------------------------------------


def _attribute(schema: list[dict[str, Any]], types: dict[str, str], role: str) -> Any:
    for element in schema:
        if element["KeyType"] == role:
            name = element["AttributeName"]
            return {"name": name, "type": types.get(name, "S")}
    return None


def read(project: Project, name: str) -> dict[str, Any] | None:
    """The table as `desired` describes one, or None when it does not exist."""
    res = f"table {name}"
    found = project.aws.call("dynamodb", "describe_table", resource=res, missing=True,
                             TableName=name)
    if found is None:
        return None
    table = found["Table"]
    arn = table["TableArn"]
    ttl, tags = parallel.together(
        lambda: project.aws.call("dynamodb", "describe_time_to_live", resource=res,
                                 TableName=name),
        lambda: list(project.aws.paginate("dynamodb", "list_tags_of_resource", "Tags",
                                          resource=res, ResourceArn=arn)),
    )
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    ttl_description = ttl.get("TimeToLiveDescription") or {}
    stream = table.get("StreamSpecification") or {}
    return {
        "arn": arn,
        "key": _attribute(table["KeySchema"], types, "HASH"),
        "sort_key": _attribute(table["KeySchema"], types, "RANGE"),
        # A table created on-demand may carry no summary (DynamoDB, moto before 5).
        "billing": (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED"),
        "ttl": ttl_description.get("AttributeName")
        if ttl_description.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") else None,
        "stream": stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
        "indexes": {
            index["IndexName"]: {
                "key": _attribute(index["KeySchema"], types, "HASH"),
                "sort_key": _attribute(index["KeySchema"], types, "RANGE"),
            }
            for index in table.get("GlobalSecondaryIndexes") or []
        },
        "tags": tags_dict(tags),
    }


# -- the declaration as AWS describes it ---------------------------------------------------


def _as_dict(attribute: TableAttribute | None) -> dict[str, str] | None:
    return None if attribute is None else {"name": attribute.name, "type": attribute.type}


def _index(index: TableIndex) -> dict[str, Any]:
    return {"key": _as_dict(index.key), "sort_key": _as_dict(index.sort_key)}


def desired(project: Project, env: str, table: Table) -> dict[str, Any]:
    return {
        "key": _as_dict(table.key),
        "sort_key": _as_dict(table.sort_key),
        "billing": BILLING,
        "ttl": table.ttl,
        "stream": table.stream,
        "indexes": {name: _index(index) for name, index in table.indexes.items()},
        "tags": project.tags(env),
    }


def _key_schema(key: dict[str, str], sort_key: dict[str, str] | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": key["name"], "KeyType": "HASH"}]
    if sort_key is not None:
        schema.append({"AttributeName": sort_key["name"], "KeyType": "RANGE"})
    return schema


def _definitions(*attributes: dict[str, str] | None) -> list[dict[str, str]]:
    """AttributeDefinitions: each key attribute once (the config checked their types agree)."""
    found: dict[str, str] = {}
    for attribute in attributes:
        if attribute is not None:
            found.setdefault(attribute["name"], attribute["type"])
    return [{"AttributeName": n, "AttributeType": t} for n, t in found.items()]


def _gsi(name: str, index: dict[str, Any]) -> dict[str, Any]:
    return {"IndexName": name, "KeySchema": _key_schema(index["key"], index["sort_key"]),
            "Projection": {"ProjectionType": "ALL"}}


def _stream_spec(view: str | None) -> dict[str, Any]:
    if view is None:
        return {"StreamEnabled": False}
    return {"StreamEnabled": True, "StreamViewType": view}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


# -- planning -----------------------------------------------------------------------------


def plan(project: Project) -> list[Change]:
    return parallel.each(
        lambda item: plan_table(project, item[0], item[1], item[2]), declared(project)
    )


def plan_table(project: Project, env: str, key: str, table: Table) -> Change:
    name = project.table_name(env, key)
    want = desired(project, env, table)
    have = read(project, name)
    if have is None:
        return _create(name, want)
    _check(project, name, key, want, have)

    fields: list[FieldChange] = [
        FieldChange(field, have[field], want[field])
        for field in ("billing", "stream", "ttl")
        if have[field] != want[field]
    ]
    added = [n for n in want["indexes"] if n not in have["indexes"]]
    removed = [n for n in have["indexes"] if n not in want["indexes"]]
    fields += [FieldChange(f"index:{n}", None, want["indexes"][n]) for n in added]
    fields += [FieldChange(f"index:{n}", have["indexes"][n], None) for n in removed]
    # Tags sdeliver does not set are the user's: keep them, add ours.
    merged = {**have["tags"], **want["tags"]}
    if merged != have["tags"]:
        fields.append(FieldChange("tags", have["tags"], merged))
    if not fields:
        return Change(KIND, name, "none")
    changing = {f.field for f in fields}
    calls: list[Call] = []
    if "billing" in changing:
        calls.append(call("dynamodb.UpdateTable"))
    if "stream" in changing:
        # A stream's view type cannot change while it is enabled: disable, then enable.
        both = have["stream"] is not None and want["stream"] is not None
        calls += [call("dynamodb.UpdateTable")] * (2 if both else 1)
    if "ttl" in changing:
        both = have["ttl"] is not None and want["ttl"] is not None
        calls += [call("dynamodb.UpdateTimeToLive")] * (2 if both else 1)
    calls += [call("dynamodb.UpdateTable")] * (len(added) + len(removed))
    if "tags" in changing:
        calls.append(call("dynamodb.TagResource"))

    def apply(p: Project) -> None:
        if "billing" in changing:
            _update(p, name, BillingMode=BILLING)
        if "stream" in changing:
            if have["stream"] is not None:
                _update(p, name, StreamSpecification=_stream_spec(None))
            if want["stream"] is not None:
                _update(p, name, StreamSpecification=_stream_spec(want["stream"]))
        if "ttl" in changing:
            if have["ttl"] is not None:
                _ttl(p, name, have["ttl"], enabled=False)
            if want["ttl"] is not None:
                _ttl(p, name, want["ttl"], enabled=True)
        for index in removed:
            _update(p, name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": index}}])
        for index in added:  # one index per UpdateTable: DynamoDB's rule
            spec = want["indexes"][index]
            _update(p, name, AttributeDefinitions=_definitions(spec["key"], spec["sort_key"]),
                    GlobalSecondaryIndexUpdates=[{"Create": _gsi(index, spec)}])
        if "tags" in changing:
            p.aws.call("dynamodb", "tag_resource", resource=f"table {name}",
                       ResourceArn=have["arn"], Tags=_tag_list(merged))

    return Change(KIND, name, "update", fields, calls, apply)


def _check(
    project: Project, name: str, key: str, want: dict[str, Any], have: dict[str, Any]
) -> None:
    """Refuse another app's table, and a key or index key that cannot change in place."""
    owner = have["tags"].get(TAG_APP)
    if owner not in (None, project.app):
        raise OperationFailed(
            f"DynamoDB table {name} belongs to sdeliver app {owner!r}",
            hint="rename the table under tables: in sdeliver.yaml, or rename the app",
        )
    if (have["key"], have["sort_key"]) != (want["key"], want["sort_key"]):
        raise OperationFailed(
            f"DynamoDB table {name} has key {_keys(have)}; sdeliver.yaml declares "
            f"{_keys(want)}, and a table's key cannot change",
            hint=f"declare the table under a new name (tables.{key} is then a new table), "
            "or copy its items elsewhere and delete it",
        )
    for index, spec in want["indexes"].items():
        found = have["indexes"].get(index)
        if found is not None and found != spec:
            raise OperationFailed(
                f"index {index} of DynamoDB table {name} has key {_keys(found)}; "
                f"sdeliver.yaml declares {_keys(spec)}, and an index's key cannot change",
                hint="give the index a new name (the old one is then deleted)",
            )


def _keys(spec: dict[str, Any]) -> str:
    parts = [spec["key"], spec["sort_key"]]
    return " + ".join(f"{a['name']} ({a['type']})" for a in parts if a is not None)


def _create(name: str, want: dict[str, Any]) -> Change:
    fields = [FieldChange(field, None, value) for field, value in want.items()
              if value not in (None, {})]
    calls = [call("dynamodb.CreateTable"),
             *([call("dynamodb.UpdateTimeToLive")] if want["ttl"] else [])]

    def apply(p: Project) -> None:
        indexes = want["indexes"]
        params: dict[str, Any] = {
            "TableName": name,
            "KeySchema": _key_schema(want["key"], want["sort_key"]),
            "AttributeDefinitions": _definitions(
                want["key"], want["sort_key"],
                *(a for spec in indexes.values() for a in (spec["key"], spec["sort_key"])),
            ),
            "BillingMode": BILLING,
            "Tags": _tag_list(want["tags"]),
        }
        if want["stream"] is not None:
            params["StreamSpecification"] = _stream_spec(want["stream"])
        if indexes:
            params["GlobalSecondaryIndexes"] = [_gsi(n, s) for n, s in indexes.items()]
        # A retry after a lost answer finds the table its first attempt made.
        p.aws.call("dynamodb", "create_table", resource=f"table {name}",
                   ignore=("ResourceInUseException",), **params)
        _wait_active(p, name)
        if want["ttl"] is not None:
            _ttl(p, name, want["ttl"], enabled=True)

    return Change(KIND, name, "create", fields, calls, apply)


def _wait_active(project: Project, name: str) -> None:
    project.aws.wait("dynamodb", "table_exists", resource=f"table {name}", delay=2,
                     TableName=name)


def _update(project: Project, name: str, **params: Any) -> None:
    """One UpdateTable, then wait for the table to be ACTIVE: DynamoDB refuses the next
    update of a table that is still UPDATING."""
    project.aws.call("dynamodb", "update_table", resource=f"table {name}", TableName=name,
                     **params)
    _wait_active(project, name)


def _ttl(project: Project, name: str, attribute: str, *, enabled: bool) -> None:
    project.aws.call(
        "dynamodb", "update_time_to_live", resource=f"table {name}", TableName=name,
        TimeToLiveSpecification={"Enabled": enabled, "AttributeName": attribute},
    )


# -- destroying ---------------------------------------------------------------------------


def _ours(project: Project) -> list[tuple[str, dict[str, Any]]]:
    names = [project.table_name(env, key) for env, key, _ in declared(project)]
    found = parallel.each(lambda name: read(project, name), names)
    return [
        (name, have) for name, have in zip(names, found, strict=True)
        if have is not None and have["tags"].get(TAG_APP) == project.app
    ]


def destroy(project: Project) -> list[Change]:
    """Delete this app's tables (their items with them): only `destroy --purge` asks."""

    def change(name: str) -> Change:
        def apply(p: Project) -> None:
            p.aws.call("dynamodb", "delete_table", resource=f"table {name}", missing=True,
                       TableName=name)

        return Change(KIND, name, "delete", [], [call("dynamodb.DeleteTable")], apply)

    return [change(name) for name, _ in _ours(project)]


def kept(project: Project) -> list[Change]:
    """What `destroy` without --purge leaves: each table, shown unchanged."""
    return [Change(KIND, name, "none") for name, _ in _ours(project)]
