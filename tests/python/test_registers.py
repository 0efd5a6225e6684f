"""Departmental registers written by real spreadsheet writers (openpyxl for .xlsx, pandas' odf
engine for LibreOffice-style .ods, msoffcrypto-tool for a password-protected workbook) are
read by `shequ run`: the header is found below title rows and merged cells, and what linking
found is in the manifest, counted independently here with pandas."""

import json
import os
import pathlib
import shutil
import subprocess

import openpyxl
from msoffcrypto.format.ooxml import OOXMLFile
import pandas as pd
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data-samples" / "sample-city"
BIN = os.environ.get("SHEQU_BIN", str(ROOT / "target" / "debug" / "shequ"))


def roster():
    r = pd.read_csv(SAMPLE / "residents.csv", encoding="gb18030", dtype=str).fillna("")
    return r.drop_duplicates("居民编号")


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    d = tmp_path_factory.mktemp("city")
    shutil.copytree(SAMPLE, d, dirs_exist_ok=True)
    return d


def write_openpyxl(path, people):
    """A federation list as openpyxl writes it: a merged title, a two-row header whose group
    cell `人员信息` is merged over 姓名 and 身份证号, one ID number stored as a number."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "名册"
    ws["A1"] = "某街道残疾人名册"
    ws.merge_cells("A1:D1")
    ws["A2"] = "人员信息"
    ws.merge_cells("A2:B2")
    ws["C2"] = "残疾信息"
    ws.merge_cells("C2:D2")
    ws.append(["姓名", "身份证号", "类别", "等级"])
    for i, p in enumerate(people.itertuples()):
        idno = int(p.公民身份号码[:17] + "0") if i == 0 else p.公民身份号码
        ws.append([p.姓名, idno, p.残疾类别, p.残疾等级])
    ws.append([])
    ws.append(["注：仅供核对"])
    wb.save(path)


def write_ods(path, people):
    """A civil-affairs list as LibreOffice-style ODS (pandas' odf engine): a title line, a blank
    line, then the table."""
    title = pd.DataFrame([["低保对象名册（2026年1月）"]])
    table = pd.DataFrame({"姓名": people["姓名"], "身份证号码": people["公民身份号码"], "备注": ""})
    with pd.ExcelWriter(path, engine="odf") as w:
        title.to_excel(w, sheet_name="Sheet1", startrow=0, header=False, index=False)
        table.to_excel(w, sheet_name="Sheet1", startrow=2, index=False)


def job_with(city, registers):
    text = (city / "job.toml").read_text(encoding="utf-8")
    text = text[: text.index("# Departmental registers")] if "# Departmental registers" in text else text
    return text + registers


def run(city, text, out):
    job = city / "job-registers.toml"
    job.write_text(text, encoding="utf-8")
    return subprocess.run([BIN, "run", "-q", str(job), "--out", str(out)], capture_output=True, text=True)


def test_openpyxl_and_ods_registers_are_read_and_linked(city, tmp_path):
    r = roster()
    disabled = r[r["残疾类别"] != ""].head(40)
    dibao = r[r["是否低保"] == "是"].head(30)
    write_openpyxl(city / "fed.xlsx", disabled)
    write_ods(city / "dibao.ods", dibao)
    text = job_with(
        city,
        """
[[registers]]
id = "fed"
path = "fed.xlsx"
category = "disabled"
fields = { disability_type = "类别", disability_grade = "等级" }
[registers.columns]
id_number = "身份证号"
name = "姓名"

[[registers]]
id = "dibao"
path = "dibao.ods"
category = "minimum_living_allowance"
[registers.columns]
id_number = "身份证号码"
name = "姓名"
""",
    )
    done = run(city, text, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    m = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    regs = {x["id"]: x for x in m["registers"]}
    # Header rows found below the title and the merged group row (1-based).
    assert regs["fed"]["header_rows"] == [3, 3]
    sheet = pd.read_excel(city / "dibao.ods", header=None, engine="odf")
    at = int(sheet.index[sheet[0] == "姓名"][0]) + 1  # where pandas put the header
    assert regs["dibao"]["header_rows"] == [at, at]
    # Independently: an ID is linked when the roster has it once; the numeric one is lost.
    uses = r["公民身份号码"].value_counts()
    placed_once = lambda ids: sum(1 for i in ids if uses.get(i, 0) == 1)
    fed = regs["fed"]["counts"]
    assert fed["unrecoverable_id"] == 1
    assert fed["matched"] == placed_once(disabled["公民身份号码"].iloc[1:])
    assert fed["not_a_person"] == 1
    assert regs["fed"]["rows"] == len(disabled) + 1
    dib = regs["dibao"]["counts"]
    assert dib["matched"] == placed_once(dibao["公民身份号码"])
    # Every row has one outcome (conflicts and roster flags come besides).
    outcomes = ["matched", "weak_match", "ambiguous", "id_not_found", "invalid_id",
                "unrecoverable_id", "duplicate", "not_a_person", "unreadable"]
    for reg, n in [("fed", len(disabled) + 1), ("dibao", len(dibao))]:
        assert sum(regs[reg]["counts"].get(k, 0) for k in outcomes) == n
    assert (tmp_path / "out" / "registers" / "grid.parquet").exists()


def test_a_truncated_or_protected_workbook_is_a_located_error(city, tmp_path):
    r = roster()
    write_openpyxl(city / "fed.xlsx", r[r["残疾类别"] != ""].head(5))
    data = (city / "fed.xlsx").read_bytes()
    (city / "cut.xlsx").write_bytes(data[: len(data) // 2])
    with open(city / "fed.xlsx", "rb") as src, open(city / "locked.xlsx", "wb") as dst:
        f = OOXMLFile(src)
        f.encrypt("secret", dst)
    for name, why in [("cut.xlsx", "cannot open the workbook"), ("locked.xlsx", "password")]:
        text = job_with(
            city,
            f"""
[[registers]]
id = "fed"
path = "{name}"
[registers.columns]
id_number = "身份证号"
name = "姓名"
""",
        )
        done = run(city, text, tmp_path / name)
        assert done.returncode != 0
        assert name in done.stderr and "registers.fed" in done.stderr and why in done.stderr, done.stderr


def test_a_register_given_as_an_in_memory_table(city):
    import polars as pl
    import shequ

    r = roster()
    dib = r[r["是否低保"] == "是"].head(20)
    table = pl.DataFrame({"证件号": list(dib["公民身份号码"]), "姓名": list(dib["姓名"])})
    base = shequ.Job.from_toml(city / "job.toml").to_dict()
    base.pop("registers", None)
    job = shequ.Job(
        base_dir=city,
        **base,
        registers=[{
            "id": "dibao",
            "data": table,
            "category": "minimum_living_allowance",
            "columns": {"id_number": "证件号", "name": "姓名"},
        }],
    )
    # The street's count: one cell, far above k, so published.
    street = shequ.build(job).table("registers/street")
    matched = street["reg_dibao_matched"].sum()
    uses = r["公民身份号码"].value_counts()
    assert matched == sum(1 for i in dib["公民身份号码"] if uses.get(i, 0) == 1)
