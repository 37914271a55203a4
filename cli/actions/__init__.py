"""The CodePipeline job worker: a Lambda handler that runs sdeliver's own operations."""
