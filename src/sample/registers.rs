//! The sample's departmental registers: four real `.xlsx` workbooks, written from the roster
//! as the departments would keep them, with the damage such lists carry planted in them.
//!
//! * `registers/残联持证残疾人名册.xlsx` (disabled persons' federation): every disabled
//!   resident with type and grade under a merged title row and a date line; one ID number
//!   stored as a number, one in its 15-digit form, a deceased person, one listed in the
//!   wrong community, a repeated row, a name with a character changed, and a note below.
//! * `registers/民政低保名册.xlsx` (civil affairs): the minimum-living-allowance residents
//!   under a two-row header with merged group cells; one ID number with full-width digits and
//!   spaces, one without an ID number (linked by name and birth date).
//! * `registers/高龄津贴发放名册.xlsx` (ageing office): the residents 80 or older at the
//!   reference date, and one person the roster does not have.
//! * `registers/失业登记名册.xlsx` (human resources): the unemployed, one with a sex that
//!   contradicts the ID number.

use std::collections::HashMap;
use std::path::Path;

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, XlsxError};

use crate::error::{Error, Result};
use crate::privacy::{check_id_number, id_check_char};

/// A roster row the registers are written from.
struct Person<'a> {
    name: &'a str,
    id: &'a str,
    sex: &'a str,
    birth: chrono::NaiveDate,
    community: Option<&'a str>,
    disability: (&'a str, &'a str),
    dibao: bool,
    unemployed: bool,
}

/// The registers' section of the sample job.
pub(super) const JOB_SECTION: &str = r#"
# Departmental registers linked to the roster by ID number (docs/registers.md): each gives its
# category, and the reconciliation report lists what does not fit (registers/).
[[registers]]
id = "disabled_federation"
department = "区残联"
path = "registers/残联持证残疾人名册.xlsx"
category = "disabled"
fields = { disability_type = "残疾类别", disability_grade = "残疾等级" }
[registers.columns]
id_number = "公民身份号码"
name = "姓名"
sex = "性别"
community = "所属社区"
status = "人员状态"

[[registers]]
id = "civil_affairs_dibao"
department = "区民政局"
path = "registers/民政低保名册.xlsx"
category = "minimum_living_allowance"
[registers.columns]
id_number = "身份证号码"
name = "姓名"
birth_date = "出生日期"
community = "所属社区"

[[registers]]
id = "ageing_allowance"
department = "区老龄办"
path = "registers/高龄津贴发放名册.xlsx"
category = "oldest_old"
[registers.columns]
id_number = "身份证号"
name = "姓名"

[[registers]]
id = "unemployment"
department = "区人社局"
path = "registers/失业登记名册.xlsx"
category = "unemployed"
[registers.columns]
id_number = "身份证号"
name = "姓名"
sex = "性别"
"#;

/// Writes the four workbooks under `dir/registers` from the roster text (`residents`, decoded)
/// and each household's community name.
pub(super) fn write(
    dir: &Path,
    residents: &str,
    community: &HashMap<String, String>,
) -> Result<()> {
    let reference = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date");
    // Each resident once (the roster repeats one), and no ID number two residents share (the
    // generator draws a few such pairs; a department would not list them).
    let mut seen = std::collections::HashSet::new();
    let rows: Vec<Vec<&str>> = residents
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<&str>>())
        .filter(|f| f.len() >= 12 && seen.insert(f[0]))
        .collect();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for f in &rows {
        *uses.entry(f[3]).or_insert(0) += 1;
    }
    let people: Vec<Person> = rows
        .iter()
        .filter(|f| uses[f[3]] == 1)
        .filter_map(|f| {
            let id = check_id_number(f[3]).ok()?;
            Some(Person {
                name: f[2],
                id: f[3],
                sex: f[4],
                birth: id.birth,
                community: community.get(f[1]).map(String::as_str),
                disability: (f[8], f[9]),
                dibao: f[10] == "是",
                unemployed: f[11] == "是",
            })
        })
        .collect();
    let out = dir.join("registers");
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let other = |c: &str| {
        people
            .iter()
            .filter_map(|p| p.community)
            .find(|x| *x != c)
            .unwrap_or(c)
            .to_owned()
    };
    let save = |name: &str, r: std::result::Result<Workbook, XlsxError>| {
        let path = out.join(name);
        r.and_then(|mut b| b.save(&path))
            .map_err(|e| Error::io(&path, std::io::Error::other(e.to_string())))
    };
    let mut disabled: Vec<&Person> = people
        .iter()
        .filter(|p| !p.disability.0.is_empty())
        .collect();
    // The one listed in the wrong community needs a community.
    if let Some(k) = disabled.iter().skip(3).position(|p| p.community.is_some()) {
        disabled.swap(3, 3 + k);
    }
    save("残联持证残疾人名册.xlsx", disabled_book(&disabled, &other))?;
    let dibao: Vec<&Person> = people.iter().filter(|p| p.dibao).collect();
    save("民政低保名册.xlsx", dibao_book(&dibao))?;
    let old: Vec<&Person> = people
        .iter()
        .filter(|p| {
            crate::analytics::special_needs::age_at(p.birth, reference).is_some_and(|a| a >= 80)
        })
        .collect();
    save("高龄津贴发放名册.xlsx", ageing_book(&old))?;
    let unemployed: Vec<&Person> = people.iter().filter(|p| p.unemployed).collect();
    save("失业登记名册.xlsx", unemployment_book(&unemployed))?;
    Ok(())
}

/// The federation's list; the planted rows are the first disabled residents (the 15-digit one
/// the first born before 2000 after them).
fn disabled_book(
    people: &[&Person],
    other: &dyn Fn(&str) -> String,
) -> std::result::Result<Workbook, XlsxError> {
    let mut book = new_book()?;
    let s = book.add_worksheet();
    s.set_name("持证名册")?;
    s.merge_range(
        0,
        0,
        0,
        7,
        "渝中区持证残疾人名册",
        &Format::new().set_bold(),
    )?;
    s.write(1, 0, "填报单位：区残联　　填报日期：2026年1月5日")?;
    s.write_row(
        2,
        0,
        [
            "序号",
            "姓名",
            "性别",
            "公民身份号码",
            "残疾类别",
            "残疾等级",
            "所属社区",
            "人员状态",
        ],
    )?;
    let old = people
        .iter()
        .skip(6)
        .position(|p| p.id[6..8] == *"19")
        .map(|i| i + 6);
    let mut r = 3u32;
    for (i, p) in people.iter().enumerate() {
        let name = if i == 5 {
            format!("{}{}", p.name, "某")
        } else {
            p.name.to_owned()
        };
        let community = match (i, p.community) {
            (3, Some(c)) => other(c),
            (_, c) => c.unwrap_or_default().to_owned(),
        };
        s.write(r, 0, r - 2)?;
        s.write(r, 1, name.as_str())?;
        s.write(r, 2, p.sex)?;
        match i {
            // A cell stored as a number: Excel keeps 15 digits.
            1 => s.write_number(r, 3, p.id[..17].parse::<f64>().unwrap_or(0.0) * 10.0)?,
            _ if Some(i) == old => s.write(r, 3, format!("{}{}", &p.id[..6], &p.id[8..17]))?,
            _ => s.write(r, 3, p.id)?,
        };
        s.write(r, 4, p.disability.0)?;
        s.write(r, 5, p.disability.1)?;
        s.write(r, 6, community.as_str())?;
        s.write(r, 7, if i == 2 { "死亡" } else { "正常" })?;
        r += 1;
        if i == 4 {
            // The same person listed twice.
            let n = (r - 2).to_string();
            let row = [
                n.as_str(),
                p.name,
                p.sex,
                p.id,
                p.disability.0,
                p.disability.1,
            ];
            s.write_row(r, 0, row)?;
            s.write_row(r, 6, [p.community.unwrap_or_default(), "正常"])?;
            r += 1;
        }
    }
    s.write(r + 1, 0, "注：本名册由区残联提供，仅供社区核对使用。")?;
    Ok(book)
}

/// Civil affairs' list under a two-row header (`基本信息` over name and ID, `救助信息` over the
/// rest).
fn dibao_book(people: &[&Person]) -> std::result::Result<Workbook, XlsxError> {
    let mut book = new_book()?;
    let s = book.add_worksheet();
    let f = Format::new();
    s.merge_range(0, 0, 0, 4, "城乡最低生活保障对象名册", &f)?;
    s.merge_range(1, 0, 1, 2, "基本信息", &f)?;
    s.merge_range(1, 3, 1, 4, "救助信息", &f)?;
    s.write_row(
        2,
        0,
        ["姓名", "身份证号码", "出生日期", "所属社区", "保障类别"],
    )?;
    for (i, p) in people.iter().enumerate() {
        let r = 3 + i as u32;
        let id = match i {
            0 => full_width_spaced(p.id),
            1 => String::new(),
            _ => p.id.to_owned(),
        };
        s.write(r, 0, p.name)?;
        s.write(r, 1, id.as_str())?;
        s.write(r, 2, p.birth.format("%Y年%-m月%-d日").to_string())?;
        s.write(r, 3, p.community.unwrap_or_default())?;
        s.write(r, 4, "低保")?;
    }
    Ok(book)
}

/// An ID number as typed on a Chinese keyboard: full-width digits, a space in the middle.
fn full_width_spaced(id: &str) -> String {
    id.chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let w = match c {
                '0'..='9' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
                c => c.to_ascii_lowercase(),
            };
            (i == 6).then_some(' ').into_iter().chain([w])
        })
        .collect()
}

/// The ageing office's list, with one person the roster does not have.
fn ageing_book(people: &[&Person]) -> std::result::Result<Workbook, XlsxError> {
    let mut book = new_book()?;
    let s = book.add_worksheet();
    s.write_row(0, 0, ["姓名", "身份证号", "发放金额（元）"])?;
    for (i, p) in people.iter().enumerate() {
        s.write(1 + i as u32, 0, p.name)?;
        s.write(1 + i as u32, 1, p.id)?;
        s.write_number(1 + i as u32, 2, 100.0)?;
    }
    let first17 = "50010419400315007"; // another district: not in the roster
    let stranger = format!("{first17}{}", id_check_char(first17).unwrap_or('0'));
    let r = 1 + people.len() as u32;
    s.write(r, 0, "迁出人员")?;
    s.write(r, 1, stranger.as_str())?;
    s.write_number(r, 2, 100.0)?;
    Ok(book)
}

/// Human resources' list; the first person's sex contradicts the ID number.
fn unemployment_book(people: &[&Person]) -> std::result::Result<Workbook, XlsxError> {
    let mut book = new_book()?;
    let s = book.add_worksheet();
    s.write_row(0, 0, ["姓名", "性别", "身份证号", "登记日期"])?;
    for (i, p) in people.iter().enumerate() {
        let sex = match (i, p.sex) {
            (0, "男") => "女",
            (0, _) => "男",
            (_, s) => s,
        };
        s.write_row(1 + i as u32, 0, [p.name, sex, p.id, "2025-06-01"])?;
    }
    Ok(book)
}

/// A workbook with a fixed creation date, so the sample is the same on every run.
fn new_book() -> std::result::Result<Workbook, XlsxError> {
    let mut book = Workbook::new();
    let created = ExcelDateTime::from_ymd(2026, 1, 5)?;
    book.set_properties(&DocProperties::new().set_creation_datetime(&created));
    Ok(book)
}
