"""The {{app}} API: one Lambda function behind an API Gateway REST API (proxy integration)."""

import json
import os

# Change it, deploy, and watch the site and the e2e tests see the new version.
VERSION = "v1"


def handler(event, context):
    path = event.get("path") or "/"
    if path.endswith("/health"):
        return respond(200, {"ok": True, "version": VERSION})
    if path.endswith("/hello"):
        name = (event.get("queryStringParameters") or {}).get("name") or "world"
        greeting = os.environ.get("GREETING", "Hello")
        return respond(200, {"message": f"{greeting}, {name}!", "version": VERSION})
    return respond(404, {"message": f"no route for {path}"})


def respond(status, body):
    headers = {
        "Content-Type": "application/json",
        # With site.hosting s3-website the site and the API are two origins on AWS.
        "Access-Control-Allow-Origin": "*",
    }
    return {"statusCode": status, "headers": headers, "body": json.dumps(body)}
