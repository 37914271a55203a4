def test_init_creates_artifact_bucket(sdeliver, project_dir, endpoint, hosted_zone):
    result = sdeliver("init", "--yes", cwd=project_dir)
    assert result.code == 0, result.output
    again = sdeliver("reconcile", "--check", cwd=project_dir)
    assert again.code == 0, again.output
