//! The steps of a case (发现 → 上报 → 交办 → 处置 → 反馈 → 回访), their timestamps as offices
//! write them, and the checks a case's times must pass.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// One step of the case loop, in the loop's order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Step {
    /// 发现: the problem is found (a patrol, an app report, a hotline call).
    Discovered,
    /// 上报: reported to the centre.
    Reported,
    /// 交办: assigned to a department.
    Assigned,
    /// 处置: handled.
    Handled,
    /// 反馈: the result fed back.
    FedBack,
    /// 回访: the resident visited or called again.
    Visited,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 6] = [
        Step::Discovered,
        Step::Reported,
        Step::Assigned,
        Step::Handled,
        Step::FedBack,
        Step::Visited,
    ];

    /// The step's name in jobs, tables and outputs (`discovered`, `reported`, ...).
    ///
    /// # Examples
    /// ```
    /// use shequ::analytics::events::Step;
    /// assert_eq!(Step::FedBack.name(), "fed_back");
    /// assert_eq!(Step::parse("处置"), Some(Step::Handled));
    /// assert_eq!(Step::parse("handled"), Some(Step::Handled));
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Step::Discovered => "discovered",
            Step::Reported => "reported",
            Step::Assigned => "assigned",
            Step::Handled => "handled",
            Step::FedBack => "fed_back",
            Step::Visited => "visited",
        }
    }

    /// The step's Chinese name.
    pub fn chinese(self) -> &'static str {
        match self {
            Step::Discovered => "发现",
            Step::Reported => "上报",
            Step::Assigned => "交办",
            Step::Handled => "处置",
            Step::FedBack => "反馈",
            Step::Visited => "回访",
        }
    }

    /// A step from its English or Chinese name.
    pub fn parse(s: &str) -> Option<Step> {
        let s = s.trim();
        Step::ALL
            .into_iter()
            .find(|x| x.name() == s || x.chinese() == s)
    }
}

/// A timestamp as offices write it: `2025-03-01 08:30[:00]`, `2025/3/1 8:30`,
/// `2025-03-01T08:30:00`, `2025年3月1日 8:30`, or a date alone (midnight). Blank is `None`.
///
/// # Examples
/// ```
/// use shequ::analytics::events::parse_timestamp;
/// let t = parse_timestamp("2025/3/1 8:30").unwrap();
/// assert_eq!(t.to_string(), "2025-03-01 08:30:00");
/// assert_eq!(parse_timestamp("2025年3月1日 08:30:15").unwrap().to_string(), "2025-03-01 08:30:15");
/// assert_eq!(parse_timestamp("2025-03-01").unwrap().to_string(), "2025-03-01 00:00:00");
/// assert!(parse_timestamp("2025-02-30 10:00").is_none());
/// assert!(parse_timestamp("").is_none());
/// ```
pub fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    let s = crate::io::table::trim(s);
    if s.is_empty() {
        return None;
    }
    if let Some(t) = canonical(s.as_bytes()) {
        return t;
    }
    let s = s.replace(['年', '月', '/'], "-").replace(['日', 'T'], " ");
    let s = s.trim();
    let (date, time) = match s.split_once(' ') {
        Some((d, t)) => (d, Some(t.trim())),
        None => (s, None),
    };
    let mut ymd = date.split('-').map(|p| p.parse::<u32>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    if ymd.next().is_some() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?;
    let time = match time {
        None | Some("") => NaiveTime::MIN,
        Some(t) => {
            let t = t.split('.').next().unwrap_or(t);
            NaiveTime::parse_from_str(t, "%H:%M:%S")
                .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M"))
                .ok()?
        }
    };
    Some(date.and_time(time))
}

/// `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS`, read without allocating (the form systems
/// export, millions of times per table): `Some(None)` for an impossible date or time, `None`
/// for any other form.
fn canonical(b: &[u8]) -> Option<Option<NaiveDateTime>> {
    if !(b.len() == 16 || b.len() == 19)
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || (b.len() == 19 && b[16] != b':')
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let (y, m, d, h, mi) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
    );
    let sec = if b.len() == 19 { num(17..19)? } else { 0 };
    let date = NaiveDate::from_ymd_opt(y as i32, m, d);
    let time = NaiveTime::from_hms_opt(h, mi, sec);
    Some(date.zip(time).map(|(d, t)| d.and_time(t)))
}

/// What is wrong with a case's step times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepProblem {
    /// A step is dated before an earlier step of the loop.
    OutOfOrder {
        /// The earlier step.
        earlier: Step,
        /// The step dated before it.
        later: Step,
    },
    /// A step is dated after the run's `as_of` time.
    InTheFuture(Step),
}

impl std::fmt::Display for StepProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepProblem::OutOfOrder { earlier, later } => write!(
                f,
                "{} ({}) is dated before {} ({})",
                later.name(),
                later.chinese(),
                earlier.name(),
                earlier.chinese()
            ),
            StepProblem::InTheFuture(s) => {
                write!(f, "{} ({}) is dated after as_of", s.name(), s.chinese())
            }
        }
    }
}

/// Checks one case's step times (indexed as [`Step::ALL`], `None` for a step not reached):
/// no step after `as_of`, and no step dated before an earlier one. A missing step in between
/// is allowed (a patrol's case is discovered and reported at once).
///
/// # Examples
/// ```
/// use shequ::analytics::events::{Step, StepProblem, check_steps, parse_timestamp};
/// let t = |s| parse_timestamp(s);
/// let as_of = t("2025-06-30").unwrap();
/// let ok = [t("2025-06-01 09:00"), t("2025-06-01 09:05"), None, t("2025-06-02"), None, None];
/// assert_eq!(check_steps(&ok, as_of), Ok(()));
/// let bad = [t("2025-06-01 09:00"), t("2025-05-31 09:05"), None, None, None, None];
/// assert_eq!(
///     check_steps(&bad, as_of),
///     Err(StepProblem::OutOfOrder { earlier: Step::Discovered, later: Step::Reported })
/// );
/// ```
///
/// # Errors
/// The first problem found, steps in order.
pub fn check_steps(
    times: &[Option<NaiveDateTime>; 6],
    as_of: NaiveDateTime,
) -> std::result::Result<(), StepProblem> {
    let mut last: Option<(Step, NaiveDateTime)> = None;
    for (step, t) in Step::ALL.into_iter().zip(times) {
        let Some(t) = *t else { continue };
        if t > as_of {
            return Err(StepProblem::InTheFuture(step));
        }
        if let Some((earlier, e)) = last {
            if t < e {
                return Err(StepProblem::OutOfOrder {
                    earlier,
                    later: step,
                });
            }
        }
        last = Some((step, t));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The allocation-free path gives what the general reading gives, impossible dates and
    /// times included; other forms fall through to the general reading.
    #[test]
    fn the_fast_path_reads_as_the_general_one() {
        let general = |t: &str| {
            let s = t.replace('T', " ");
            let (d, tm) = s.split_once(' ')?;
            let d = NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?;
            let tm = NaiveTime::parse_from_str(tm, "%H:%M:%S")
                .or_else(|_| NaiveTime::parse_from_str(tm, "%H:%M"))
                .ok()?;
            Some(d.and_time(tm))
        };
        for t in [
            "2025-03-01 08:30",
            "2025-03-01 08:30:59",
            "2025-03-01T23:59:00",
            "2024-02-29 00:00",
            "2025-02-29 10:00",
            "2025-03-01 24:00",
            "2025-13-01 10:00",
            "2025-03-01 08:60",
        ] {
            assert_eq!(canonical(t.as_bytes()), Some(general(t)), "{t}");
            assert_eq!(parse_timestamp(t), general(t), "{t}");
        }
        for t in ["2025-3-01 08:30", "2025-03-01 8:30", "2025/03/01 08:30"] {
            assert_eq!(canonical(t.as_bytes()), None, "{t}");
            assert!(parse_timestamp(t).is_some(), "{t}");
        }
    }
}
