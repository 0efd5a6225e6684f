"""docs/outputs.md's column reference is what the runs write: every column of every Parquet
output (the sample's research run, a street office's partitioned operational run with plain
identifiers, the sample's grid-worker run and its differentially private release) is documented under its file with its Arrow type, and every documented file of
those runs exists."""

import os
import pathlib
import re
import subprocess

import pyarrow.parquet as pq
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data-samples" / "sample-city"
BIN = os.environ.get("SHEQU_BIN", str(ROOT / "target" / "debug" / "shequ"))
DOC = ROOT / "docs" / "outputs.md"


def documented():
    """{file key: [(regex, type)]} from the doc's column reference."""
    text = DOC.read_text(encoding="utf-8")
    ref = text[text.index("## Column reference") :]
    out, current = {}, None
    for line in ref.splitlines():
        if line.startswith("### "):
            current = re.findall(r"`([^`]+)`", line)
            for f in current:
                out[f] = []
        elif current and line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            names, typ = re.findall(r"`([^`]+)`", cells[0]), cells[1]
            for n in names:
                pattern = re.escape(n)
                pattern = pattern.replace(re.escape("<roster column>"), ".+")
                pattern = pattern.replace(re.escape("<count column>"), "[a-z0-9_]+")
                # Names as the data writes them: Chinese categories and departments, 2025-03.
                for free in ["<case category>", "<department>", "<period>"]:
                    pattern = pattern.replace(re.escape(free), ".+")
                pattern = re.sub(r"<[^>]+>", "[a-z0-9_]+", pattern)
                for f in current:
                    out[f].append((re.compile(f"^{pattern}$"), typ))
    return out


def key(rel):
    """A file's key in the doc: partitioned tables by their directory."""
    m = re.match(r"(.+?)/street_id=", rel)
    return m.group(1) + "/" if m else rel


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("doc")
    research = d / "research"
    subprocess.run([BIN, "run", "-q", str(SAMPLE / "job.toml"), "--out", str(research)], check=True)
    job = (SAMPLE / "job.toml").read_text(encoding="utf-8")
    job = job.replace(
        'output = "research"\nk = 5\n',
        'output = "operational"\nstreet = "500103001"\nplain_identifiers = true\n',
    ).replace("[output]\nmap = true\n", "[output]\nmap = true\npartitioned = true\n")
    job = job.replace('path = "', f'path = "{SAMPLE}/')
    job = job.replace('visit_rules = "', f'visit_rules = "{SAMPLE}/')
    assert "plain_identifiers = true" in job and "partitioned = true" in job
    (d / "street.toml").write_text(job, encoding="utf-8")
    street = d / "street"
    env = dict(os.environ, SHEQU_SECRET="a street office's secret, 32 bytes")
    subprocess.run([BIN, "run", "-q", str(d / "street.toml"), "--out", str(street)], check=True, env=env)
    worker = d / "worker"
    subprocess.run(
        [BIN, "run", "-q", str(SAMPLE / "job-grid-worker.toml"), "--out", str(worker)],
        check=True,
        env=env,
    )
    dp = d / "dp"
    subprocess.run([BIN, "run", "-q", str(SAMPLE / "job-dp.toml"), "--out", str(dp)], check=True, env=env)
    return [research, street, worker, dp]


def test_every_column_is_documented_with_its_type(runs):
    doc = documented()
    seen = set()
    problems = []
    for root in runs:
        for p in sorted(root.rglob("*.parquet")):
            k = key(str(p.relative_to(root)))
            seen.add(k)
            if k not in doc:
                problems.append(f"{k}: file not in the column reference")
                continue
            for field in pq.read_schema(p):
                types = [t for rx, t in doc[k] if rx.match(field.name)]
                if not types:
                    problems.append(f"{k}: column {field.name} not documented")
                elif str(field.type) not in types:
                    problems.append(f"{k}: {field.name} is {field.type}, documented {types}")
    assert problems == [], "\n".join(problems)
    # The partitioned layout and the flat one are both covered by these runs.
    assert {"households/", "residents/", "coverage/residents/", "grids.parquet"} <= seen
    # No documented file is stale: each was written by these runs, or is one written only when
    # there is something to put in it (remainders).
    stale = [f for f in doc if f not in seen and "remainders" not in f]
    assert stale == []
