"""The script loader: include expansion, the generated keys include, and every command loading on the server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from tasks.core import keys
from tasks.core.scripting import LUA_DIR, expand, load_command

COMMANDS = sorted(p.stem for p in LUA_DIR.glob("*.lua"))
ROOT = Path(__file__).resolve().parents[2]


def _write(root: Path, name: str, text: str) -> None:
    path = root / f"{name}.lua"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_an_include_line_is_replaced_by_the_file_expanded_recursively_in_order(tmp_path: Path) -> None:
    _write(tmp_path, "includes/a", "local a = 1\n")
    _write(tmp_path, "includes/b", '--- @include "includes/a"\nlocal b = a + 1\n')
    source = 'local first = 0\n--- @include "includes/b"\nreturn b\n'
    assert expand(source, root=tmp_path) == "local first = 0\nlocal a = 1\nlocal b = a + 1\nreturn b\n"


def test_each_include_is_expanded_once(tmp_path: Path) -> None:
    _write(tmp_path, "includes/a", "local a = 1\n")
    _write(tmp_path, "includes/b", '--- @include "includes/a"\nlocal b = 2\n')
    source = '--- @include "includes/a"\n--- @include "includes/b"\n--- @include "includes/a"\nreturn a + b\n'
    assert expand(source, root=tmp_path) == "local a = 1\nlocal b = 2\nreturn a + b\n"


def test_a_missing_include_names_the_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path, "includes/b", 'local b = 1\n\n--- @include "includes/nope"\n')
    with pytest.raises(FileNotFoundError, match=r"includes/b.lua:3: include 'includes/nope' not found"):
        expand('--- @include "includes/b"\n', "cmd.lua", root=tmp_path)


def test_a_malformed_include_line_is_an_error_not_a_comment(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cmd.lua:2: malformed include"):
        expand("local x = 1\n--- @include includes/a\n", "cmd.lua", root=tmp_path)


def test_the_keys_include_is_generated_from_keys_py(conn: redis.Redis) -> None:
    script = expand(
        '--- @include "keys"\nreturn {K.job, K.queues, K.stats(ARGV[1], ARGV[2]), K.dependencies(ARGV[1]), RECORD_FIELDS}\n'
    )
    reply = conn.eval(script, 0, "x", "7")
    assert reply == [
        keys.JOB.format("").encode(),
        keys.QUEUES.encode(),
        keys.STATS.format("x", "7").encode(),
        keys.DEPENDENCIES.format("x").encode(),
        keys.RECORD_FIELDS,
    ]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_loads_on_the_server(conn: redis.Redis, name: str) -> None:
    script = load_command(name)
    assert conn.script_load(script.source) == script.sha  # a syntax error would be refused here


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_opens_with_its_contract(name: str) -> None:
    head = (LUA_DIR / f"{name}.lua").read_text().split("\n\n", 1)[0]
    for word in ("KEYS", "ARGV", "Reply", "Events"):
        assert re.search(rf"^-- {word}\b", head, re.M), f"{name}.lua: header lacks {word}"


def test_no_key_literal_outside_keys_py() -> None:
    literal = re.compile(r"""["'](rq|taskrail):[a-z]""")
    offenders = []
    for folder in ("tasks", "workers", "config", "scripts", "deploy"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".lua") or path == ROOT / "tasks/core/keys.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("--", 1)[0] if path.suffix == ".lua" else line
                if literal.search(code) and "taskrail:latest" not in code:  # an image name, not a key
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "key names belong in tasks/core/keys.py:\n" + "\n".join(offenders)


def test_key_part_recovers_the_name_inside_a_key() -> None:
    assert keys.key_part(keys.FAILED, "rq:failed:email") == "email"
    assert keys.key_part(keys.DEPENDENTS, "rq:job:abc:dependents") == "abc"
    assert keys.queue_name("rq:queue:a.b-c") == "a.b-c"


def test_the_keys_include_holds_only_the_names_the_command_uses() -> None:
    text = expand('--- @include "keys"\n-- K.queues in a comment does not count\nreturn K.job\n')
    assert "  job = 'rq:job:'," in text and "queues =" not in text


def test_a_key_name_keys_py_does_not_know_is_an_error() -> None:
    with pytest.raises(KeyError, match="unknown keys \\['nope'\\]"):
        expand('--- @include "keys"\nreturn K.nope\n')
