"""A configuration file is hostile input: alias blow-ups, deep nesting, duplicate keys, empty or
binary files are refused with one line naming file, line and key; no hang, no traceback, and no
settings come out of a refused file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bus.cli.app import app
from bus.config.loader import ConfigError, load_settings
from bus.config.yaml_file import MAX_BYTES, MAX_DEPTH, MAX_NODES

pytestmark = pytest.mark.usefixtures("no_bus_environment")


def _laughs(levels: int = 9) -> str:
    """The "billion laughs" of YAML: each level ten aliases of the one before."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _laughs_in_mappings() -> str:
    lines = ["m0: &m0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol, g: lol, h: lol}"]
    for i in range(1, 8):
        keys = ", ".join(f"k{j}: *m{i - 1}" for j in range(10))
        lines.append(f"m{i}: &m{i} {{{keys}}}")
    return "\n".join(lines) + "\n"


def _wide_alias() -> str:
    """One long list, aliased many times: quadratic rather than exponential."""
    return "big: &big [" + ", ".join(["x"] * 2000) + "]\nmany: [" + ", ".join(
        ["*big"] * 100) + "]\n"


def _deep_through_aliases() -> str:
    """Each anchor is shallow, but the aliases, expanded, are nested beyond the limit."""
    lines = ["d0: &d0 [[[[[[[[[[x]]]]]]]]]]"]
    for i in range(1, 12):
        lines.append(f"d{i}: &d{i} [[[[[[[[[[*d{i - 1}]]]]]]]]]]")
    return "\n".join(lines) + "\n"


def _deep_block(levels: int) -> str:
    return "node:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(levels))


# (name, file content, words the one problem says, its path, its line)
REFUSED: list[tuple[str, str | bytes, str, str, int | None]] = [
    ("billion-laughs", _laughs(), "aliases expand to more than", "", 5),  # l4: 111111
    ("laughs-in-mappings", _laughs_in_mappings(), "aliases expand to more than", "", None),
    ("wide-alias", _wide_alias(), "aliases expand to more than", "", 2),
    ("recursive-sequence", "a: &a [1, *a]\n", "recursive alias", "", 1),
    ("recursive-mapping", "a: &a {b: *a}\n", "recursive alias", "", 1),
    ("deep-flow-sequence", "node: " + "[" * 20_000 + "]" * 20_000 + "\n", "nested deeper", "", 1),
    ("deep-flow-mapping", "node: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n",
     "nested deeper", "", 1),
    ("deep-block-mapping", _deep_block(MAX_DEPTH + 10), "nested deeper", "", MAX_DEPTH),
    ("deep-through-aliases", _deep_through_aliases(), f"more than {MAX_DEPTH} levels", "", None),
    ("duplicate-section", "node: {name: a}\nlog_level: INFO\nnode: {name: b}\n",
     "duplicate key 'node' (first on line 1)", "node", 3),
    ("duplicate-nested", "node:\n  name: a\n  listen: 127.0.0.1:1\n  name: b\n",
     "duplicate key 'name' (first on line 2)", "node.name", 4),
    ("duplicate-flow", "node: {name: a, name: b}\n", "duplicate key 'name'", "node.name", 1),
    ("duplicate-in-list", "access:\n  - client: a\n    client: b\n    service: x/y/v1\n",
     "duplicate key 'client'", "access.0.client", 3),
    ("duplicate-secret", "audit:\n  secret: '{file: a}'\n  secret: other\n",
     "duplicate key 'secret'", "audit.secret", 3),
    ("duplicate-spelled-two-ways", "services:\n  x: {1: a, 0x1: b}\n", "duplicate key '1'", "", 2),
    ("empty", "", "file is empty", "", 1),
    ("comments-only", "# just a comment\n# and another\n", "file is empty", "", 1),
    ("whitespace-only", "\n   \n\n", "file is empty", "", 1),
    ("tab-indented", "node:\n\tname: a\n", "not valid YAML", "", 2),
    ("document-marker-only", "---\n", "file is empty", "", 1),
    ("explicit-null", "null\n", "file is empty", "", 1),
    ("two-documents", "log_level: INFO\n---\nlog_level: DEBUG\n", "single document", "", 2),
    ("not-utf8", b"node:\n  name: \xff\xfe\n", "not UTF-8 text", "", 2),
    ("binary", b"\x7fELF\x02\x01\x01\x00\x00", "not valid YAML", "", None),
    ("too-large", "# " + "x" * MAX_BYTES + "\n", f"larger than {MAX_BYTES} bytes", "", None),
    ("python-object", "node: !!python/object/apply:os.system ['true']\n", "cannot be read", "",
     1),
    ("top-level-list", "- node\n- members\n", "expected a mapping at the top level", "", 1),
    ("top-level-scalar", "just words\n", "expected a mapping at the top level", "", 1),
]


def _write(directory: Path, content: str | bytes, name: str = "bus.yaml") -> Path:
    path = directory / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "says", "where", "line"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_a_hostile_file_is_refused_with_one_clear_line(
    tmp_path: Path, content: str | bytes, says: str, where: str, line: int | None
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    (problem,) = caught.value.problems
    assert says in problem.message
    assert problem.path == where
    if line is not None:
        assert problem.line == line
    rendered = str(caught.value)
    assert rendered.startswith(f"{path}:") and "\n" not in rendered
    assert "Traceback" not in rendered and "yaml.constructor" not in rendered
    assert len(rendered) < 400  # one line a person reads, not the document echoed back


def test_limits_are_generous_for_real_files(tmp_path: Path) -> None:
    """Aliases, merge keys (overridden on purpose) and nesting a real file uses still load."""
    text = (
        "x-retry: &retry {attempts: 3, max_delay_s: 1}\n"
        "x-node: &node {name: base, listen: 127.0.0.1:8080}\n"
        "node:\n  <<: *node\n  name: node-7\n"
    )
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:  # x- keys are unknown settings, and said so
        load_settings(path)
    assert {p.path for p in caught.value.problems} == {"x-retry", "x-node"}
    merged = _write(tmp_path, "node:\n  <<: {name: base, listen: 127.0.0.1:8080}\n  name: n7\n")
    settings = load_settings(merged)
    assert (settings.node.name, settings.node.listen) == ("n7", "127.0.0.1:8080")
    just_under = "log_level: INFO\nnode: {name: n, hosts: []}\n" + "# c\n" * 1000
    assert load_settings(_write(tmp_path, just_under)).node.name == "n"
    assert MAX_NODES >= 10_000  # far above any real configuration


@pytest.mark.parametrize(
    "case", ["billion-laughs", "deep-flow-sequence", "duplicate-nested", "empty", "not-utf8"]
)
def test_check_config_says_it_in_one_line_and_exits_2(tmp_path: Path, case: str) -> None:
    content = next(c[1] for c in REFUSED if c[0] == case)
    path = _write(tmp_path, content)
    result = CliRunner().invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("configuration") and "is invalid" in lines[0]
    assert len(lines) == 2 and lines[1].strip().startswith(f"{path}:")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "content",
    [
        next(c[1] for c in REFUSED if c[0] == "billion-laughs"),
        next(c[1] for c in REFUSED if c[0] == "duplicate-secret"),
        next(c[1] for c in REFUSED if c[0] == "empty"),
        "transport: {url: embedded://var/queues.db}\naudit: {secret: plain-secret-0123456789}\n",
        "transport: {url: embedded://var/queues.db}\n"
        "members: {portal: {public_key: portal.pub, api_token_sha256: " + "a" * 64 + "}}\n",
    ],
    ids=["billion-laughs", "duplicate-secret", "empty", "plain-secret", "no-public-url"],
)
def test_serve_refuses_before_it_writes_anything(tmp_path: Path, content: str | bytes) -> None:
    path = _write(tmp_path, content)
    result = CliRunner().invoke(app, ["serve", "--config", str(path)])
    assert result.exit_code == 2 and "is invalid" in result.output
    assert "Traceback" not in result.output and "plain-secret-0123456789" not in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["bus.yaml"]  # no queue, log or database
