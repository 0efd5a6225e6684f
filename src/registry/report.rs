//! The reconciliation report: what linking each register to the roster found.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// What a register row came to, or what is wrong with it. Every data row of a register has
/// exactly one *outcome* ([`is_outcome`](Self::is_outcome)); a linked row can have
/// *conflicts* besides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Outcome: linked to one roster resident by ID number.
    Matched,
    /// Outcome: the ID number is missing or unusable; linked by name and birth date (and
    /// community when the register has one) to exactly one resident.
    WeakMatch,
    /// Outcome: several roster residents fit (the same ID number, or the same name and birth
    /// date); never resolved by choice.
    Ambiguous,
    /// Outcome, not in the roster: a valid ID number that no resident has.
    IdNotFound,
    /// Outcome, not in the roster: the ID number is missing or invalid and no resident has the
    /// name and birth date.
    InvalidId,
    /// Outcome, not in the roster: the ID number was stored as a number and lost digits, and
    /// no resident has the name and birth date.
    UnrecoverableId,
    /// Outcome: the row repeats an earlier row's ID number; the first row stands.
    Duplicate,
    /// Outcome: a row with neither ID number nor name (a note or total).
    NotAPerson,
    /// Outcome: the row could not be read.
    Unreadable,
    /// Conflict: the register's name differs from the roster's for the same ID number.
    NameMismatch,
    /// Conflict: the register's sex contradicts its ID number's sequence digit.
    SexConflict,
    /// Conflict: deceased, moved out or cancelled in the register, active in the roster; the
    /// row gives no category.
    InactiveInRegister,
    /// Conflict: the register's community is not where the roster places the person.
    CommunityMismatch,
    /// A roster flag of a category that registers define, confirmed by none of them.
    UnconfirmedRosterFlag,
}

impl FindingKind {
    /// Every kind, in report order.
    pub const ALL: [FindingKind; 14] = [
        FindingKind::Matched,
        FindingKind::WeakMatch,
        FindingKind::Ambiguous,
        FindingKind::IdNotFound,
        FindingKind::InvalidId,
        FindingKind::UnrecoverableId,
        FindingKind::Duplicate,
        FindingKind::NotAPerson,
        FindingKind::Unreadable,
        FindingKind::NameMismatch,
        FindingKind::SexConflict,
        FindingKind::InactiveInRegister,
        FindingKind::CommunityMismatch,
        FindingKind::UnconfirmedRosterFlag,
    ];

    /// The snake_case code used in outputs.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shequ::registry::FindingKind::WeakMatch.code(), "weak_match");
    /// ```
    pub fn code(self) -> &'static str {
        match self {
            FindingKind::Matched => "matched",
            FindingKind::WeakMatch => "weak_match",
            FindingKind::Ambiguous => "ambiguous",
            FindingKind::IdNotFound => "id_not_found",
            FindingKind::InvalidId => "invalid_id",
            FindingKind::UnrecoverableId => "unrecoverable_id",
            FindingKind::Duplicate => "duplicate",
            FindingKind::NotAPerson => "not_a_person",
            FindingKind::Unreadable => "unreadable",
            FindingKind::NameMismatch => "name_mismatch",
            FindingKind::SexConflict => "sex_conflict",
            FindingKind::InactiveInRegister => "inactive_in_register",
            FindingKind::CommunityMismatch => "community_mismatch",
            FindingKind::UnconfirmedRosterFlag => "unconfirmed_roster_flag",
        }
    }

    /// Whether the kind is a row's one outcome (else a conflict beside it).
    pub fn is_outcome(self) -> bool {
        self <= FindingKind::Unreadable
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One finding of the reconciliation, located in its register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The register's id.
    pub register: String,
    /// The row as the file's user sees it (see [`RegisterRow::row`](super::RegisterRow::row));
    /// 0 for a roster-side finding.
    pub row: usize,
    /// The ID number, masked ([`mask_identifier`](crate::privacy::mask_identifier)).
    pub id: String,
    /// What was found.
    pub kind: FindingKind,
    /// Detail without personal data (the other row, the reason).
    pub detail: String,
    /// The roster resident concerned (index into [`Model::residents`](crate::Model)).
    pub resident: Option<u32>,
    /// The community the register row names, resolved to the model (index into
    /// [`Model::communities`](crate::Model)): where a finding without a resident is counted.
    pub community: Option<u32>,
}

/// One register's counts by kind, and what it was read from.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterSummary {
    /// The register's id.
    pub id: String,
    /// The department.
    pub department: Option<String>,
    /// The file.
    pub path: String,
    /// Spreadsheets: the sheet.
    pub sheet: Option<String>,
    /// Spreadsheets: the header's rows (1-based).
    pub header_rows: Option<(usize, usize)>,
    /// Data rows read.
    pub rows: usize,
    /// 15-digit ID numbers upgraded to 18.
    pub upgraded_ids: usize,
    /// Findings by kind (outcomes add up to `rows`).
    pub counts: BTreeMap<FindingKind, usize>,
}

impl RegisterSummary {
    /// The count of one kind.
    pub fn count(&self, kind: FindingKind) -> usize {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    /// Whether every data row has exactly one outcome.
    pub fn accounted(&self) -> bool {
        let outcomes: usize = FindingKind::ALL
            .iter()
            .filter(|k| k.is_outcome())
            .map(|k| self.count(*k))
            .sum();
        outcomes == self.rows
    }
}
