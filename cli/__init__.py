"""sdeliver: continuous delivery and safe releases for a serverless web app on AWS."""

__version__ = "0.1.0"
