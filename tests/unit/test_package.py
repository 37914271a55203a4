"""Function packages are reproducible zips: same files, same bytes, same CodeSha256."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest
from sdeliver.errors import ConfigError, OperationFailed
from sdeliver.package import package_directory, sha256_file_digest

FILES = {
    "app.py": "def handler(event, context):\n    return {}\n",
    "lib/util.py": "X = 1\n",
    "lib/data/table.json": '{"a": 1}\n',
    "run.sh": "#!/bin/sh\necho hi\n",
}


def write_tree(root: Path, files: dict[str, str], *, order: list[str] | None = None) -> Path:
    for name in order or list(files):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[name], encoding="utf-8")
    (root / "run.sh").chmod(0o755)
    return root


def names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_the_same_tree_packages_to_the_same_bytes_twice(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "app", FILES)

    assert package_directory(source).data == package_directory(source).data


def test_copies_with_other_mtimes_and_creation_order_give_the_same_bytes(tmp_path: Path) -> None:
    first = write_tree(tmp_path / "one", FILES)
    second = write_tree(tmp_path / "two", FILES, order=sorted(FILES, reverse=True))
    for i, path in enumerate(sorted(second.rglob("*"))):
        os.utime(path, (1_600_000_000 + i * 1000, 1_700_000_000 + i * 7777))
    (second / "lib" / "util.py").chmod(0o600)  # another umask: only the executable bit counts

    assert package_directory(first).data == package_directory(second).data


def test_the_digests_are_sha256_of_the_zip_as_lambda_reports_it(tmp_path: Path) -> None:
    package = package_directory(write_tree(tmp_path / "app", FILES))

    raw = hashlib.sha256(package.data).digest()
    assert package.sha256_b64 == base64.b64encode(raw).decode()
    assert package.sha256_hex == raw.hex()
    assert package.files == 4


def test_entries_are_sorted_files_with_fixed_times_and_normalised_modes(tmp_path: Path) -> None:
    package = package_directory(write_tree(tmp_path / "app", FILES))

    infos = zipfile.ZipFile(io.BytesIO(package.data)).infolist()
    assert [i.filename for i in infos] == sorted(FILES)  # no directory entries
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in infos}
    assert modes == {"app.py": 0o644, "lib/data/table.json": 0o644, "lib/util.py": 0o644,
                     "run.sh": 0o755}
    assert {i.extra for i in infos} == {b""}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}


def test_contents_round_trip(tmp_path: Path) -> None:
    package = package_directory(write_tree(tmp_path / "app", FILES))

    archive = zipfile.ZipFile(io.BytesIO(package.data))
    assert {n: archive.read(n).decode() for n in archive.namelist()} == FILES


def test_caches_and_vcs_files_are_left_out(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "app", FILES)
    for junk in ("__pycache__/app.cpython-312.pyc", "lib/old.pyc", ".git/HEAD", ".DS_Store",
                 "lib/.DS_Store"):
        (source / junk).parent.mkdir(parents=True, exist_ok=True)
        (source / junk).write_bytes(b"junk")

    assert names(package_directory(source).data) == sorted(FILES)


def test_a_symlink_inside_the_source_is_packaged_as_its_target(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "app", FILES)
    (source / "alias.py").symlink_to(source / "app.py")
    (source / "shared").symlink_to(source / "lib", target_is_directory=True)

    archive = zipfile.ZipFile(io.BytesIO(package_directory(source).data))
    assert archive.read("alias.py") == archive.read("app.py")
    assert archive.read("shared/util.py") == b"X = 1\n"


def test_a_missing_source_names_the_setting_and_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:  # exit 2: the configuration names no directory
        package_directory(tmp_path / "app")

    assert str(err.value) == f"function.source app/ does not exist in {tmp_path}"


def test_an_empty_source_is_refused(tmp_path: Path) -> None:
    (tmp_path / "app" / "__pycache__").mkdir(parents=True)
    (tmp_path / "app" / "__pycache__" / "x.pyc").write_bytes(b"")

    with pytest.raises(OperationFailed, match=r"function\.source app/ has no files"):
        package_directory(tmp_path / "app")


def test_a_symlink_leaving_the_source_is_refused(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "app", FILES)
    (tmp_path / "secret.txt").write_text("password")
    (source / "leak.txt").symlink_to(tmp_path / "secret.txt")

    with pytest.raises(OperationFailed, match=r"symlink leak\.txt points outside"):
        package_directory(source)


def test_a_symlink_loop_is_refused(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "app", FILES)
    (source / "lib" / "up").symlink_to(source, target_is_directory=True)

    with pytest.raises(OperationFailed, match="symlink lib/up makes a loop"):
        package_directory(source)


def test_five_thousand_files_package_and_stay_reproducible(tmp_path: Path) -> None:
    source = tmp_path / "app"
    for i in range(5000):
        path = source / f"pkg{i % 50}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"VALUE = {i}\n")

    first = package_directory(source)

    assert first.files == 5000
    assert package_directory(source).sha256_hex == first.sha256_hex


def test_file_digest_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))

    hex_digest, b64_digest = sha256_file_digest(path)

    raw = hashlib.sha256(path.read_bytes()).digest()
    assert (hex_digest, b64_digest) == (raw.hex(), base64.b64encode(raw).decode())


# -- the build cache ---------------------------------------------------------------------


def fresh(source: Path) -> bytes:
    return package_directory(source).data


def test_an_unchanged_tree_is_not_zipped_again_and_gives_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdeliver import package

    source, cache = write_tree(tmp_path / "app", FILES), tmp_path / "cache"
    first = package_directory(source, cache=cache)

    def no_zipping(entries: object) -> None:
        raise AssertionError("zipped again")

    monkeypatch.setattr(package, "_zip", no_zipping)
    again = package_directory(source, cache=cache)

    assert again.data == first.data
    assert again.sha256_b64 == first.sha256_b64 == base64.b64encode(
        hashlib.sha256(again.data).digest()).decode()
    monkeypatch.undo()
    assert again.data == fresh(source)


def test_a_changed_file_of_the_same_size_with_a_new_mtime_is_zipped_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdeliver import package

    monkeypatch.setattr(package, "RACY_NS", 0)  # trust times alone: no content check
    source, cache = write_tree(tmp_path / "app", FILES), tmp_path / "cache"
    before = package_directory(source, cache=cache)
    util = source / "lib" / "util.py"
    util.write_text("X = 2\n", encoding="utf-8")  # the same size
    os.utime(util, ns=(util.stat().st_atime_ns, util.stat().st_mtime_ns + 1_000_000_000))

    after = package_directory(source, cache=cache)

    assert after.data != before.data
    assert after.data == fresh(source)


def test_a_file_put_back_with_its_old_mtime_is_zipped_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As `cp -p` or tar would: the mtime says unchanged, the change time does not.
    from sdeliver import package

    monkeypatch.setattr(package, "RACY_NS", 0)
    source, cache = write_tree(tmp_path / "app", FILES), tmp_path / "cache"
    util = source / "lib" / "util.py"
    old = util.stat()
    package_directory(source, cache=cache)
    util.write_text("X = 3\n", encoding="utf-8")
    os.utime(util, ns=(old.st_atime_ns, old.st_mtime_ns))

    assert package_directory(source, cache=cache).data == fresh(source)


def test_a_file_changed_moments_after_its_build_is_checked_by_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A coarse clock can leave every time unchanged: recent files are compared by content.
    from sdeliver import package

    source, cache = write_tree(tmp_path / "app", FILES), tmp_path / "cache"
    package_directory(source, cache=cache)
    (source / "lib" / "util.py").write_text("X = 4\n", encoding="utf-8")
    same_stamps = package.collect(source, exclude=package.DEFAULT_EXCLUDE, key="k")
    monkeypatch.setattr(package, "collect", lambda *a, **k: [
        type(e)(e.name, e.path, e.executable, e.size, old.stamp)
        for e, old in zip(same_stamps, _first_stamps(cache, same_stamps), strict=True)])

    assert package_directory(source, cache=cache).data == fresh(source)


def _first_stamps(cache: Path, entries: list) -> list:  # type: ignore[type-arg]
    import json
    from types import SimpleNamespace

    files = json.loads((cache / "function.source.json").read_text())["files"]
    return [SimpleNamespace(stamp=tuple(f[2:])) for f in files]


def test_a_file_changed_while_it_is_zipped_is_not_served_stale_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An edit right after the file went into the zip, its size and times kept (coarse clock):
    # the cache must describe the bytes in the zip, not the file as it is after the build.
    from sdeliver import package

    source, cache = write_tree(tmp_path / "app", FILES), tmp_path / "cache"
    util = source / "lib" / "util.py"
    archive_file = package.archive_file

    def edit_after_archiving(archive: zipfile.ZipFile, entry: package._Entry) -> str:
        copied = archive_file(archive, entry)
        if entry.name == "lib/util.py":
            old = util.stat()
            util.write_text("X = 5\n", encoding="utf-8")  # the same size
            os.utime(util, ns=(old.st_atime_ns, old.st_mtime_ns))
        return copied

    monkeypatch.setattr(package, "archive_file", edit_after_archiving)
    package_directory(source, cache=cache)
    monkeypatch.undo()
    entries = package.collect(source, exclude=package.DEFAULT_EXCLUDE, key="k")
    monkeypatch.setattr(package, "collect", lambda *a, **k: [
        type(e)(e.name, e.path, e.executable, e.size, old.stamp)
        for e, old in zip(entries, _first_stamps(cache, entries), strict=True)])

    assert package_directory(source, cache=cache).data == fresh(source)


def test_a_damaged_cached_zip_is_built_again(tmp_path: Path) -> None:
    source, cache = write_tree(tmp_path / "app", FILES), tmp_path / "cache"
    package_directory(source, cache=cache)
    (cache / "function.source.zip").write_bytes(b"not a zip")

    assert package_directory(source, cache=cache).data == fresh(source)


def test_the_cache_in_the_project_directory_is_never_packaged(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "app", FILES)
    package_directory(source, cache=source / ".sdeliver" / "cache")

    again = package_directory(source, cache=source / ".sdeliver" / "cache")

    assert not any(name.startswith(".sdeliver") for name in names(again.data))
