"""The README's two set-up commands stay real: CI runs the same test command, and the
sample the first one opens exists."""

import os
import re

from tests.conftest import ROOT


def _readme_commands():
    text = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"```sh\n(.+?)\n```", text)


def test_ci_runs_the_readme_test_command():
    commands = _readme_commands()
    assert len(commands) >= 2
    ci = open(os.path.join(ROOT, ".ci", "run")).read().splitlines()
    assert commands[1] in ci


def test_readme_main_command_opens_a_shipped_sample():
    first = _readme_commands()[0]
    sample = re.search(r"(traces/\S+)", first).group(1)
    assert os.path.exists(os.path.join(ROOT, sample))


def test_tests_run_against_the_installed_package():
    """CI installs the package and tests that, not the source tree beside it (unless it
    is installed in editable mode, for development)."""
    import json
    from importlib.metadata import PackageNotFoundError, distribution

    import ptviz
    import replayer
    try:
        direct = distribution("ptviz").read_text("direct_url.json")
    except PackageNotFoundError:
        raise AssertionError("ptviz is not installed: run the README's test command")
    editable = bool(direct and json.loads(direct).get("dir_info", {}).get("editable"))
    for module in (ptviz, replayer):
        in_tree = os.path.dirname(os.path.abspath(module.__file__)) == \
            os.path.join(ROOT, module.__name__)
        assert in_tree == editable, (module.__file__, editable)


def _code(text):
    """Every line of a fenced block and every inline code span, as a user would paste it
    (a ``$ `` prompt taken off)."""
    blocks = re.findall(r"```[a-z]*\n(.*?)\n```", text, re.S)
    rest = re.sub(r"```[a-z]*\n.*?\n```", "", text, flags=re.S)
    # A command continued with a backslash is pasted whole.
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return [c.removeprefix("$ ") for c in lines + re.findall(r"`([^`\n]+)`", rest)]


def test_readme_commands_paste_into_a_shell():
    """A --fail-on condition's ``>`` left unquoted is a redirection: the shell would
    create a file named after the threshold and ptviz would gate on something else."""
    import shlex
    commands = [c for c in _code(open(os.path.join(ROOT, "README.md")).read())
                if c.startswith(("ptviz ", "--fail-on"))]
    assert sum("--fail-on" in c for c in commands) >= 4
    for command in commands:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        redirections = [t for t in lexer if set(t) <= set("<>&")]
        assert not redirections, command
