"""The embedded default: an AWS emulator (moto) on a loopback port, the CloudFront and API
Gateway pieces moto lacks (edge.py, quirks.py), and a local gateway that runs the app.

Release code never imports this package: it asks `endpoints.local_urls(project, env)`
where an environment answers. Importing it does not import moto (an optional dependency).
"""
