//! One resident registry from many lists (集中登记, "collect once, use many times"): the
//! departments' registers (`[[registers]]`: the disabled persons' federation, civil affairs,
//! the ageing office, ...) linked to the population roster by citizen ID number, with a
//! reconciliation report of what did not fit. See `docs/registers.md`.
//!
//! * [`RegisterOptions`] — one register in the job: file, sheet, key columns, the category and
//!   fields membership gives.
//! * [`read_register`] (and [`read_registers_from`], several at once) — a register read and normalised ([`RegisterRow`]): ID numbers packed
//!   ([`CitizenId`](crate::privacy::CitizenId), 15-digit numbers upgraded, numbers a
//!   spreadsheet stored as floats refused), names as comparison keys ([`name_key`]).
//! * [`Linker`] — the people-stage sink that links the roster's chunks to the registers;
//!   [`Linker::finish`] gives the [`Links`]: per register row one outcome ([`FindingKind`]),
//!   its conflicts, and the memberships.
//!
//! # Example
//! ```
//! use shequ::registry::{FindingKind, Linker, RosterKeys, read_register};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dir = tempfile::tempdir()?;
//!     shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(7))?;
//!     let job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
//!     // A register naming the roster's first resident, and someone the roster does not know.
//!     let roster = std::fs::read(dir.path().join("residents.csv"))?;
//!     let (roster, _, _) = encoding_rs::GB18030.decode(&roster);
//!     let first: Vec<&str> = roster.lines().nth(1).unwrap().split(',').collect();
//!     let csv = format!("身份证号,姓名\n{},{}\n11010519491231002X,某人\n", first[3], first[2]);
//!     std::fs::write(dir.path().join("list.csv"), csv)?;
//!     let options: shequ::registry::RegisterOptions = toml::from_str(
//!         "id = 'list'\npath = 'list.csv'\n[columns]\nid_number = '身份证号'\nname = '姓名'",
//!     )?;
//!     let register = read_register(&options, dir.path())?;
//!     let mut linker = Linker::new(vec![register], RosterKeys::of(&job));
//!     let built = shequ::build_with_people(&job, &shequ::NoProgress, &mut [&mut linker])?;
//!     let links = linker.finish(&built.model);
//!     let s = &links.summaries[0];
//!     assert_eq!((s.count(FindingKind::Matched), s.count(FindingKind::IdNotFound)), (1, 1));
//!     assert!(s.accounted());
//!     Ok(())
//! }
//! ```

mod counts;
mod link;
mod load;
mod names;
mod options;
mod report;

pub use counts::FINEST;
pub use link::{Linker, Links, RosterKeys};
pub use load::{Register, RegisterRow, read_register, read_registers, read_registers_from};
pub use names::name_key;
pub(crate) use options::check_registers;
pub use options::{RegisterColumns, RegisterOptions, Roles};
pub use report::{Finding, FindingKind, RegisterSummary};
