//! A chunk of the cases table read into cases: each row placed in the frame (point in polygon,
//! building code or unit code), its steps checked and judged against their limits, or
//! rejected with the reason.

use chrono::NaiveDateTime;
use foldhash::HashMap;
use geo::{Coord, MultiPolygon};
use rayon::prelude::*;

use super::classes::{CaseSource, Satisfaction};
use super::deadlines::Card;
use super::options::EventLayer;
use super::roster_ids::RosterIds;
use super::rules::Rules;
use super::steps::{Step, StepProblem, check_steps, parse_timestamp};
use crate::crs::{CoordCheck, Crs, Region, Transformer};
use crate::error::Result;
use crate::index::{PolygonIndex, ranks_by_id};
use crate::io::table::{Table, TextColumn, clean_code_ref, parse_number, trim};
use crate::model::Model;
use crate::model::level::Layer;
use crate::model::quality::IssueKind;

/// Where a case is: the frame's finest polygon level, indexed once.
pub(crate) struct Locator<'m> {
    model: &'m Model,
    pub(crate) finest: Layer,
    index: PolygonIndex,
    buildings: HashMap<&'m str, u32>,
    units: HashMap<&'m str, u32>,
    crs: Crs,
    to_lonlat: Transformer,
    to_working: Transformer,
    region: Region,
    metres: f64,
}

impl<'m> Locator<'m> {
    /// Indexes the finest polygon level of `model`; `crs` is the coordinate columns' CRS.
    ///
    /// # Errors
    /// A model without polygon levels; a CRS PROJ cannot use.
    pub(crate) fn new(
        model: &'m Model,
        crs: Crs,
        region: Region,
        metres: f64,
    ) -> Result<Locator<'m>> {
        let finest = model.finest_polygon_level().ok_or_else(|| {
            crate::Error::data(
                crate::error::Location::layer(Layer::Event.name()),
                "cases are placed in grids, communities or streets: the job has none",
            )
        })?;
        let n = model.units(finest) as u32;
        let ids: Vec<&str> = (0..n).map(|u| model.code(finest, u)).collect();
        let polys: Vec<Option<&MultiPolygon<f64>>> = (0..n)
            .map(|u| Some(model.area_geometry(finest, u)))
            .collect();
        let index = PolygonIndex::new(&polys, &ranks_by_id(&ids));
        let lonlat = Crs::lonlat();
        Ok(Locator {
            model,
            finest,
            index,
            buildings: (model.buildings.iter().enumerate())
                .map(|(i, b)| (b.id.as_str(), i as u32))
                .collect(),
            units: ids
                .iter()
                .enumerate()
                .map(|(i, c)| (*c, i as u32))
                .collect(),
            to_lonlat: Transformer::new(&crs, &lonlat)?,
            to_working: Transformer::new(&lonlat, &model.working_crs)?,
            crs,
            region,
            metres,
        })
    }
}

/// A case's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Open,
    Closed,
    Reopened,
}

/// Reads a status as offices write it; blank: closed once fed back.
///
/// ```text
/// 已结案, 办结, closed → closed;  重办, 返工, reopened → reopened;  处理中, anything else → open
/// ```
fn status(s: Option<&str>, fed_back: bool) -> Status {
    let s = s.map(trim).unwrap_or_default();
    // The words offices write most, matched whole before any search.
    match s {
        "已结案" | "结案" | "办结" | "已办结" | "已完成" | "已解决" => {
            Status::Closed
        }
        "处理中" | "办理中" | "待处理" | "已派遣" | "已受理" => Status::Open,
        "重办" | "返工" => Status::Reopened,
        _ => searched_status(s, fed_back),
    }
}

/// [`status`] by searching the words in `s` (trimmed).
fn searched_status(s: &str, fed_back: bool) -> Status {
    let l = super::classes::ascii_lowercase(s);
    let any = |keys: &[&str]| keys.iter().any(|k| l.contains(k));
    if s.is_empty() {
        return if fed_back {
            Status::Closed
        } else {
            Status::Open
        };
    }
    if any(&["重办", "返工", "重新", "reopen"]) {
        Status::Reopened
    } else if any(&["办结", "结案", "已完成", "完成", "closed", "done", "已解决"]) {
        Status::Closed
    } else {
        Status::Open
    }
}

/// One case placed and judged.
#[derive(Debug, Clone)]
pub(crate) struct Case<'t> {
    /// 0-based data row in the file.
    pub(crate) row: u32,
    pub(crate) id: &'t str,
    /// Unit of the finest polygon level.
    pub(crate) unit: u32,
    pub(crate) class: u32,
    pub(crate) source: CaseSource,
    pub(crate) status: Status,
    pub(crate) satisfaction: Option<Satisfaction>,
    pub(crate) department: Option<&'t str>,
    pub(crate) resident: Option<u32>,
    /// The square (or building) of the case, for repeats.
    pub(crate) place: u64,
    /// The first time recorded (seconds since 1970).
    pub(crate) first: i64,
    /// Per step: clock seconds from the step before it (when both are recorded).
    pub(crate) durations: [Option<i64>; 6],
    /// Per step: within its limit (when recorded, with a limit and a step before it).
    pub(crate) on_time: [Option<bool>; 6],
    /// A step finished late or an open step past its deadline.
    pub(crate) overdue: bool,
    /// For an open case: its current step, when it started, its deadline and card.
    pub(crate) current: Option<(Step, NaiveDateTime, Option<NaiveDateTime>, Card)>,
    /// The free text, when asked for.
    pub(crate) text: Option<String>,
}

/// A row's problem: rejected with a kind and a detail; warnings keep the row.
pub(crate) type Problem = (IssueKind, String);

/// The columns of a chunk, looked up once.
struct Columns<'t> {
    id: TextColumn<'t>,
    category: TextColumn<'t>,
    sub: Option<TextColumn<'t>>,
    source: Option<TextColumn<'t>>,
    building: Option<TextColumn<'t>>,
    unit: Option<TextColumn<'t>>,
    department: Option<TextColumn<'t>>,
    status: Option<TextColumn<'t>>,
    satisfaction: Option<TextColumn<'t>>,
    resident: Option<TextColumn<'t>>,
    text: Vec<TextColumn<'t>>,
    steps: Vec<(usize, TextColumn<'t>)>,
}

impl<'t> Columns<'t> {
    fn of(t: &'t Table, l: &EventLayer, keep_text: bool) -> Columns<'t> {
        let col = |c: &Option<String>| c.as_deref().map(|c| t.text_column(c));
        Columns {
            id: t.text_column(&l.id),
            category: t.text_column(&l.category),
            sub: col(&l.subcategory),
            source: col(&l.source),
            building: col(&l.building),
            unit: col(&l.unit),
            department: col(&l.department),
            status: col(&l.status),
            satisfaction: col(&l.satisfaction),
            resident: col(&l.resident),
            text: match keep_text {
                true => l.text.iter().map(|c| t.text_column(c)).collect(),
                false => Vec::new(),
            },
            steps: l
                .step_columns()
                .unwrap_or_default()
                .into_iter()
                .map(|(s, c)| (s as usize, t.text_column(&c)))
                .collect(),
        }
    }
}

/// Per row of a chunk: its point in the working CRS, and the region problem of a point
/// outside. The buffers are kept from chunk to chunk (their memory is reused, not faulted in
/// again).
#[derive(Default)]
pub(crate) struct Located {
    xs: Vec<Option<f64>>,
    ys: Vec<Option<f64>>,
    coords: Vec<Option<Coord<f64>>>,
    problems: Vec<Option<Problem>>,
}

/// Fills `into` with the coordinates of a chunk's rows in the working CRS, and the region
/// problem of those outside.
fn coordinates(t: &Table, l: &EventLayer, loc: &Locator<'_>, into: &mut Located) -> Result<()> {
    let n = t.frame.height();
    let Located {
        xs,
        ys,
        coords,
        problems,
    } = into;
    problems.clear();
    problems.resize(n, None);
    coords.clear();
    let (Some(lon), Some(lat)) = (&l.lon, &l.lat) else {
        coords.resize(n, None);
        return Ok(());
    };
    let value = |name: &str, into: &mut Vec<Option<f64>>| {
        into.clear();
        match t.numbers(name) {
            Some(c) => into.extend(c.downcast_iter().flat_map(|a| a.iter().map(|v| v.copied()))),
            None => {
                let c = t.text_column(name);
                into.par_extend(
                    (0..n)
                        .into_par_iter()
                        .map(|i| c.get(i).and_then(parse_number)),
                );
            }
        }
    };
    value(lon, xs);
    value(lat, ys);
    coords.par_extend(xs.par_iter().zip(&*ys).map(|(x, y)| match (*x, *y) {
        (Some(x), Some(y)) if x.is_finite() && y.is_finite() => Some(Coord { x, y }),
        _ => None,
    }));
    for (i, why) in loc.to_lonlat.transform_points(coords)? {
        problems[i] = Some((
            IssueKind::OutOfRange,
            format!(
                "cannot transform from {}: {}",
                loc.crs,
                crate::error::excerpt(&why)
            ),
        ));
    }
    // Outside the region: the problem is kept and the point dropped.
    (coords.par_iter_mut().zip(&mut *problems))
        .with_min_len(4096)
        .for_each(|(c, problem)| {
            if let Some(p) = *c {
                let v = loc.region.check(p.x, p.y);
                if v != CoordCheck::Ok {
                    *problem = Some(crate::model::build::coord_issue(v, p, &loc.crs, 5));
                    *c = None;
                }
            }
        });
    loc.to_working.transform_points(coords)?;
    Ok(())
}

/// Everything a chunk is read against.
pub(crate) struct Context<'a, 'm> {
    pub(crate) layer: &'a EventLayer,
    pub(crate) rules: &'a Rules,
    pub(crate) locator: &'a Locator<'m>,
    pub(crate) roster: Option<&'a RosterIds>,
    pub(crate) keep_text: bool,
}

/// A chunk ready to be read row by row, from any thread: its columns looked up and its
/// coordinates brought to the working CRS once.
pub(crate) struct ChunkReader<'t> {
    table: &'t Table,
    cols: Columns<'t>,
    located: Located,
}

impl<'t> ChunkReader<'t> {
    /// `located` is the buffers of the chunk before ([`into_buffers`](Self::into_buffers)).
    ///
    /// # Errors
    /// A transformation PROJ cannot set up.
    pub(crate) fn new(
        cx: &Context<'_, '_>,
        t: &'t Table,
        mut located: Located,
    ) -> Result<ChunkReader<'t>> {
        coordinates(t, cx.layer, cx.locator, &mut located)?;
        Ok(ChunkReader {
            table: t,
            cols: Columns::of(t, cx.layer, cx.keep_text),
            located,
        })
    }

    /// The buffers, for the next chunk.
    pub(crate) fn into_buffers(self) -> Located {
        self.located
    }

    /// Frame row `i`: its 0-based data row, its id, its case or why it is rejected; warnings
    /// are pushed to `warnings`. `first` is the first row with row `i`'s id when it repeats
    /// one.
    pub(crate) fn row(
        &self,
        cx: &Context<'_, '_>,
        i: usize,
        first: Option<u32>,
        warnings: &mut Vec<Problem>,
    ) -> (u32, Option<&'t str>, std::result::Result<Case<'t>, Problem>) {
        let cols = &self.cols;
        let row = self.table.source_row(i) as u32;
        let id = cols.id.get(i).map(trim).filter(|s| !s.is_empty());
        let case = match (id, first) {
            (None, _) => Err((IssueKind::MissingId, "empty case id".into())),
            (Some(_), Some(f)) => Err((IssueKind::DuplicateId, format!("the id repeats row {f}"))),
            (Some(id), None) => {
                let (coord, problem) = (self.located.coords[i], &self.located.problems[i]);
                read_row(cx, cols, i, row, coord, problem).map(|mut c| {
                    c.id = id;
                    link(cx, cols, i, &mut c, warnings);
                    c
                })
            }
        };
        (row, id, case)
    }
}

/// The resident and satisfaction of a placed case; what cannot be used is a warning.
fn link(
    cx: &Context<'_, '_>,
    cols: &Columns<'_>,
    i: usize,
    c: &mut Case<'_>,
    w: &mut Vec<Problem>,
) {
    if let (Some(col), Some(roster)) = (&cols.resident, cx.roster) {
        if let Some(id) = col.get(i).and_then(clean_code_ref) {
            c.resident = roster.find(&id);
            if c.resident.is_none() {
                w.push((
                    IssueKind::UnknownReference,
                    "the resident id is not in the roster (the case is kept, without its resident)"
                        .into(),
                ));
            }
        }
    }
    if let Some(s) = cols.satisfaction.as_ref().and_then(|s| s.get(i)) {
        if !trim(s).is_empty() {
            c.satisfaction = Satisfaction::parse(s);
            if c.satisfaction.is_none() {
                w.push((
                    IssueKind::BadValue,
                    format!(
                        "satisfaction {:?} is not 满意, 基本满意, 不满意 or 1-5",
                        s.trim()
                    ),
                ));
            }
        }
    }
}

fn read_row<'t>(
    cx: &Context<'_, '_>,
    cols: &Columns<'t>,
    i: usize,
    row: u32,
    coord: Option<Coord<f64>>,
    coord_problem: &Option<Problem>,
) -> std::result::Result<Case<'t>, Problem> {
    let category = cols.category.get(i).unwrap_or_default();
    let sub = cols.sub.as_ref().and_then(|c| c.get(i));
    let class = cx.rules.class(category, sub).ok_or_else(|| {
        (
            IssueKind::UnknownCategory,
            format!(
                "category {:?}{} is not in the classification (extend it with events.classes)",
                category.trim(),
                sub.map(|s| format!(" / {:?}", s.trim()))
                    .unwrap_or_default()
            ),
        )
    })?;
    let times = times(cols, i)?;
    check_steps(&times, cx.rules.as_of).map_err(|p| match p {
        StepProblem::OutOfOrder { .. } => (IssueKind::StepsOutOfOrder, p.to_string()),
        StepProblem::InTheFuture(_) => (IssueKind::FutureTime, p.to_string()),
    })?;
    let (unit, place) = locate(cx, cols, i, coord, coord_problem)?;
    let status = status(
        cols.status.as_ref().and_then(|c| c.get(i)),
        times[Step::FedBack as usize].is_some(),
    );
    let mut case = Case {
        row,
        id: "",
        unit,
        class,
        source: cols
            .source
            .as_ref()
            .and_then(|c| c.get(i))
            .and_then(CaseSource::parse)
            .unwrap_or(CaseSource::Other),
        status,
        satisfaction: None,
        department: cols
            .department
            .as_ref()
            .and_then(|c| c.get(i))
            .map(trim)
            .filter(|s| !s.is_empty()),
        resident: None,
        place,
        first: times
            .iter()
            .flatten()
            .next()
            .map_or(0, |t| t.and_utc().timestamp()),
        durations: [None; 6],
        on_time: [None; 6],
        overdue: false,
        current: None,
        text: None,
    };
    judge(cx.rules, &times, &mut case)?;
    if !cols.text.is_empty() {
        let parts: Vec<&str> = cols.text.iter().filter_map(|c| c.get(i)).collect();
        case.text = Some(parts.join(" / "));
    }
    Ok(case)
}

/// The step times of row `i`; a case needs at least one.
fn times(cols: &Columns<'_>, i: usize) -> std::result::Result<[Option<NaiveDateTime>; 6], Problem> {
    let mut times = [None; 6];
    for (s, c) in &cols.steps {
        let Some(v) = c.get(i).map(trim).filter(|v| !v.is_empty()) else {
            continue;
        };
        times[*s] = Some(parse_timestamp(v).ok_or_else(|| {
            (
                IssueKind::BadValue,
                format!("{} time {v:?} is not a time", Step::ALL[*s].name()),
            )
        })?);
    }
    if times.iter().all(Option::is_none) {
        return Err((IssueKind::BadValue, "no step has a time".into()));
    }
    Ok(times)
}

/// The finest unit and the place of row `i`: by coordinates, else building, else unit code.
fn locate(
    cx: &Context<'_, '_>,
    cols: &Columns<'_>,
    i: usize,
    coord: Option<Coord<f64>>,
    coord_problem: &Option<Problem>,
) -> std::result::Result<(u32, u64), Problem> {
    let loc = cx.locator;
    let level = loc.finest.singular();
    if let Some(p) = coord {
        let unit = loc.index.locate(p).ok_or_else(|| {
            (
                IssueKind::OutsideParent,
                format!("the case's location is in no {level}"),
            )
        })?;
        let (x, y) = (
            (p.x / loc.metres).floor() as i64,
            (p.y / loc.metres).floor() as i64,
        );
        let place = (x as u64) << 32 ^ (y as u64 & 0xffff_ffff) ^ 1 << 63;
        return Ok((unit, place));
    }
    if let Some(b) = cols
        .building
        .as_ref()
        .and_then(|c| c.get(i))
        .and_then(clean_code_ref)
    {
        let bi = *loc.buildings.get(&*b).ok_or_else(|| {
            (
                IssueKind::UnknownReference,
                format!("building {b:?} is not in the buildings layer"),
            )
        })?;
        let unit = loc.model.buildings[bi as usize]
            .lineage
            .at(loc.finest)
            .ok_or_else(|| {
                (
                    IssueKind::OutsideParent,
                    format!("building {b:?} is in no {level}"),
                )
            })?;
        return Ok((unit, u64::from(bi)));
    }
    if let Some(u) = cols
        .unit
        .as_ref()
        .and_then(|c| c.get(i))
        .and_then(clean_code_ref)
    {
        let unit = *loc.units.get(&*u).ok_or_else(|| {
            (
                IssueKind::UnknownReference,
                format!("{level} {u:?} is not in the {level}s layer"),
            )
        })?;
        return Ok((unit, u64::from(unit) | 1 << 62));
    }
    Err(coord_problem.clone().unwrap_or((
        IssueKind::Unlocated,
        "no usable location: no coordinates, building or unit code".into(),
    )))
}

/// Durations, on-time steps, the open step's card, overdue: against the class's limits.
fn judge(
    rules: &Rules,
    times: &[Option<NaiveDateTime>; 6],
    case: &mut Case<'_>,
) -> std::result::Result<(), Problem> {
    let limits = &rules.classes[case.class as usize].limits;
    let cal_err = |e: crate::Error| (IssueKind::BadValue, crate::error::plain(&e.to_string()));
    let mut last: Option<NaiveDateTime> = None;
    let mut last_step = 0;
    for s in 0..6 {
        let Some(t) = times[s] else { continue };
        if let Some(p) = last {
            case.durations[s] = Some((t - p).num_seconds());
            if let Some(l) = limits[s] {
                let late = l.elapsed(&rules.calendar, p, t).map_err(cal_err)? > l.seconds();
                case.on_time[s] = Some(!late);
                case.overdue |= late;
            }
        }
        last = Some(t);
        last_step = s;
    }
    if case.status == Status::Closed || last_step == 5 {
        return Ok(());
    }
    let start = last.expect("a case has a time");
    let step = Step::ALL[last_step + 1];
    let (deadline, card) = match limits[last_step + 1] {
        Some(l) => {
            let elapsed = l
                .elapsed(&rules.calendar, start, rules.as_of)
                .map_err(cal_err)?;
            let card = rules.cards.card(elapsed, l);
            (
                Some(l.deadline(&rules.calendar, start).map_err(cal_err)?),
                card,
            )
        }
        None => (None, Card::Green),
    };
    case.overdue |= card == Card::Red;
    case.current = Some((step, start, deadline, card));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_as_offices_write_them() {
        assert_eq!(status(Some("已结案"), false), Status::Closed);
        assert_eq!(status(Some(" 办结 "), false), Status::Closed);
        assert_eq!(status(Some("Closed"), false), Status::Closed);
        assert_eq!(status(Some("重办"), true), Status::Reopened);
        assert_eq!(status(Some("处理中"), true), Status::Open);
        assert_eq!(status(None, true), Status::Closed);
        assert_eq!(status(Some(""), false), Status::Open);
    }

    #[test]
    fn whole_words_read_as_the_search_reads_them() {
        for w in [
            "已结案",
            "结案",
            "办结",
            "已办结",
            "已完成",
            "已解决",
            "处理中",
            "办理中",
            "待处理",
            "已派遣",
            "已受理",
            "重办",
            "返工",
        ] {
            assert_eq!(status(Some(w), false), searched_status(w, false), "{w}");
        }
    }
}
