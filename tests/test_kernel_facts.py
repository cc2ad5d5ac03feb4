"""The kernel facts users are pointed at exist: every section ``ptviz simulate --explain``
cites is a heading of docs/kernel-facts.md, and nothing users see cites the old "KF" file."""

import os
import re

import pytest

from ptviz import arches
from ptviz.cli import COMMANDS, main
from ptviz.sim import kernels
from tests.conftest import ROOT

FACTS = os.path.join(ROOT, "docs", "kernel-facts.md")
CITED = re.compile(r"§(\d+(?:\.\d+)?)")
VERSIONS = ("6.13", "6.14", "6.17", "6.19", "7.0", "after-7.0")


def headings() -> set[str]:
    """Section numbers of the file's headings: ``## 1. …`` gives 1, ``### 1.2 …`` 1.2."""
    with open(FACTS, encoding="utf-8") as f:
        return {m[1] for line in f
                if (m := re.match(r"#{2,3} (\d+(?:\.\d+)?)\.? ", line))}


def test_the_facts_file_has_the_sections_the_code_relies_on():
    # Stable numbers: §1.2 is the matrix, §2.5 the table-free paths, §8 ptviz's mapping.
    have = headings()
    assert {"0", "1", "1.1", "1.2", "1.3", "1.4", "2.1", "2.5", "3", "4", "5.1", "6", "7",
            "8", "8.1", "8.2"} <= have


@pytest.mark.parametrize("version", VERSIONS)
def test_every_section_explain_cites_exists(capsys, version):
    have = headings()
    for name in arches.ARCHES:
        assert main(["simulate", "--explain", "--arch", name, "--kernel", version]) == 0
        out = capsys.readouterr().out
        cited = set(CITED.findall(out))
        assert cited, (name, version)
        assert cited <= have, (name, version, cited - have)
        for line in out.splitlines():
            # A citation names the file it is in, on the same line.
            if "§" in line:
                assert "docs/kernel-facts.md §" in line, line
        assert "KF" not in out


def test_overridden_flags_still_cite_real_sections(capsys):
    assert main(["simulate", "--explain", "--arch", "arm64", "--kernel", "6.14",
                 "--set", "pt_reclaim=on", "--set", "sync=ipi_targeted"]) == 0
    out = capsys.readouterr().out
    assert set(CITED.findall(out)) <= headings()
    assert "set on the command line (--set sync=ipi_targeted)" in out


def test_profiles_cite_the_facts_file():
    for arch in arches.ARCHES.values():
        assert arch.sources.startswith("docs/kernel-facts.md §"), arch.name
        assert set(CITED.findall(arch.sources)) <= headings(), arch.name
    for version in VERSIONS:
        cfg = kernels.resolve(arches.get("x86_64"), version)
        for reason in cfg.reasons.values():
            assert "KF" not in reason and set(CITED.findall(reason)) <= headings()


def test_no_help_text_cites_the_old_file(capsys):
    outputs = []
    for command in (None, *COMMANDS):
        with pytest.raises(SystemExit):
            main(["--help"] if command is None else [command, "--help"])
        outputs.append(capsys.readouterr().out)
    assert main(["simulate", "--list-arches"]) == 0
    outputs.append(capsys.readouterr().out)
    simulate_help = " ".join(outputs[COMMANDS.index("simulate") + 1].split())
    assert "citing docs/kernel-facts.md" in simulate_help
    assert not [text for text in outputs if "KF §" in text or "shared/reference" in text]


def test_no_source_file_cites_the_old_shorthand():
    """Comments and strings alike: "KF §1.2" pointed at a file outside the repository."""
    found = []
    for package in ("ptviz", "replayer"):
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith((".py", ".md")):
                    path = os.path.join(folder, name)
                    with open(path, encoding="utf-8") as f:
                        text = f.read()
                    if re.search(r"\bKF\b|shared/reference/kernel-facts", text):
                        found.append(os.path.relpath(path, ROOT))
    assert found == []
