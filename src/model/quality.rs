//! The data-quality report: every problem found, and the accounting of every input row.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::level::Layer;

/// What kind of problem a [`QualityIssue`] is.
///
/// # Examples
/// ```
/// assert_eq!(shequ::IssueKind::DuplicateId.code(), "duplicate_id");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// The geometry is invalid (self-intersection, unclosed or too short ring, ...).
    InvalidGeometry,
    /// The feature has no geometry, an empty one, or one of the wrong type.
    MissingGeometry,
    /// The id occurs more than once in the layer; later rows are rejected.
    DuplicateId,
    /// The id is empty.
    MissingId,
    /// The declared parent code is not an id of the parent layer.
    UnknownParent,
    /// The declared parent and the spatial parent differ.
    ParentConflict,
    /// Two sibling polygons overlap.
    Overlap,
    /// Part of a parent polygon is covered by none of its children.
    Gap,
    /// A child polygon extends outside its parent.
    CrossesParent,
    /// The feature lies outside every polygon of the level it belongs in.
    OutsideParent,
    /// A household has neither a known building nor a location.
    Unlocated,
    /// Coordinates are outside the valid or the declared region.
    OutOfRange,
    /// Coordinates look like latitude and longitude swapped.
    SwappedLatLon,
    /// A row could not be read (wrong number of fields, undecodable text).
    UnreadableRow,
    /// A value could not be parsed (a number, a date).
    BadValue,
    /// A reference to a row of another layer that does not exist or was rejected.
    UnknownReference,
    /// A citizen ID number fails the GB 11643 check (length, characters, birth date or check
    /// character); the number is reported masked.
    BadIdNumber,
    /// A case's steps are dated out of the loop's order.
    StepsOutOfOrder,
    /// A time is after the run's `as_of` time.
    FutureTime,
    /// A case's category (or sub-category) is not in the classification.
    UnknownCategory,
}

impl IssueKind {
    /// The snake_case code used in `quality.parquet`.
    pub fn code(self) -> &'static str {
        match self {
            IssueKind::InvalidGeometry => "invalid_geometry",
            IssueKind::MissingGeometry => "missing_geometry",
            IssueKind::DuplicateId => "duplicate_id",
            IssueKind::MissingId => "missing_id",
            IssueKind::UnknownParent => "unknown_parent",
            IssueKind::ParentConflict => "parent_conflict",
            IssueKind::Overlap => "overlap",
            IssueKind::Gap => "gap",
            IssueKind::CrossesParent => "crosses_parent",
            IssueKind::OutsideParent => "outside_parent",
            IssueKind::Unlocated => "unlocated",
            IssueKind::OutOfRange => "out_of_range",
            IssueKind::SwappedLatLon => "swapped_lat_lon",
            IssueKind::UnreadableRow => "unreadable_row",
            IssueKind::BadValue => "bad_value",
            IssueKind::UnknownReference => "unknown_reference",
            IssueKind::BadIdNumber => "bad_id_number",
            IssueKind::StepsOutOfOrder => "steps_out_of_order",
            IssueKind::FutureTime => "future_time",
            IssueKind::UnknownCategory => "unknown_category",
        }
    }
}

impl fmt::Display for IssueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Whether the row was kept despite the issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The row is in the model; the issue is a note (e.g. a parent conflict that a rule resolved).
    Warning,
    /// The row is not (fully) placed in the model.
    Rejected,
}

impl Severity {
    /// `"warning"` or `"rejected"`.
    pub fn code(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Rejected => "rejected",
        }
    }
}

/// One entry of the report: layer, row/feature index, id, kind, detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityIssue {
    /// The layer the row belongs to.
    pub layer: Layer,
    /// 0-based feature or data-row index in the input (None for derived units).
    pub index: Option<usize>,
    /// The row's id (masked for residents).
    pub id: Option<String>,
    /// What kind of problem.
    pub kind: IssueKind,
    /// Whether the row was kept.
    pub severity: Severity,
    /// A human-readable detail (the other id, the area in m², the reason).
    pub detail: String,
}

/// Rows read, placed and reported for one layer.
///
/// The identity `read == placed + rejected` holds for every layer after a build
/// ([`QualityReport::check_accounting`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerCount {
    /// Rows or features in the input.
    pub read: usize,
    /// Rows in the model, placed at every level present above them.
    pub placed: usize,
    /// Rows not placed; each has at least one [`Severity::Rejected`] issue.
    pub rejected: usize,
}

/// The data-quality report of a build.
///
/// # Examples
/// ```
/// use shequ::{IssueKind, Layer, QualityReport, Severity};
/// let mut report = QualityReport::default();
/// report.push(Layer::Building, Some(3), Some("B3"), IssueKind::DuplicateId, Severity::Rejected, "also at feature 1");
/// assert_eq!(report.count(IssueKind::DuplicateId), 1);
/// assert!(report.issues()[0].to_string().contains("feature/row 3"));
/// ```
#[derive(Debug, Clone, Default, Serialize)]
pub struct QualityReport {
    issues: Vec<QualityIssue>,
    counts: BTreeMap<Layer, LayerCount>,
}

impl QualityReport {
    /// Adds an issue.
    pub fn push(
        &mut self,
        layer: Layer,
        index: Option<usize>,
        id: Option<&str>,
        kind: IssueKind,
        severity: Severity,
        detail: impl Into<String>,
    ) {
        // Household and resident ids identify people: reports show them masked.
        let id = match layer {
            Layer::Household | Layer::Resident => id.map(crate::privacy::mask_identifier),
            _ => id.map(str::to_owned),
        };
        self.issues.push(QualityIssue {
            layer,
            index,
            id,
            kind,
            severity,
            // Details often carry another library's message: one line, short, no debug structs.
            detail: crate::error::plain(&detail.into()),
        });
    }

    /// Appends issues collected elsewhere (e.g. by parallel workers).
    pub fn extend(&mut self, issues: impl IntoIterator<Item = QualityIssue>) {
        self.issues.extend(issues);
    }

    /// All issues, in the order found.
    pub fn issues(&self) -> &[QualityIssue] {
        &self.issues
    }

    /// Number of issues of a kind.
    pub fn count(&self, kind: IssueKind) -> usize {
        self.issues.iter().filter(|i| i.kind == kind).count()
    }

    /// Issues of one layer.
    pub fn for_layer(&self, layer: Layer) -> impl Iterator<Item = &QualityIssue> {
        self.issues.iter().filter(move |i| i.layer == layer)
    }

    /// Records the accounting for a layer.
    pub fn set_count(&mut self, layer: Layer, count: LayerCount) {
        self.counts.insert(layer, count);
    }

    /// The accounting per layer, for the layers that were read.
    pub fn counts(&self) -> &BTreeMap<Layer, LayerCount> {
        &self.counts
    }

    /// Sorts issues by layer, index and kind, so that reports are reproducible.
    pub fn sort(&mut self) {
        self.issues.sort_by(|a, b| {
            (a.layer, a.index, a.kind, &a.detail).cmp(&(b.layer, b.index, b.kind, &b.detail))
        });
    }

    /// Checks that every layer's rows are accounted for: `read == placed + rejected`, and every
    /// rejected row has a [`Severity::Rejected`] issue naming its index.
    ///
    /// [`build`](crate::build) runs this on every build, in release builds too, and fails with
    /// [`Error::Internal`](crate::Error::Internal) naming the layer rather than return a model
    /// that lost a row.
    ///
    /// # Errors
    /// The first layer whose numbers do not add up, with a description.
    pub fn check_accounting(&self) -> Result<(), (Layer, String)> {
        for (layer, c) in &self.counts {
            if c.read != c.placed + c.rejected {
                return Err((
                    *layer,
                    format!(
                        "{layer}: read {} != placed {} + rejected {}",
                        c.read, c.placed, c.rejected
                    ),
                ));
            }
            let mut rejected: Vec<usize> = self
                .for_layer(*layer)
                .filter(|i| i.severity == Severity::Rejected)
                .filter_map(|i| i.index)
                .collect();
            rejected.sort_unstable();
            rejected.dedup();
            if rejected.len() != c.rejected {
                return Err((
                    *layer,
                    format!(
                        "{layer}: {} rows rejected but {} distinct rows have a rejection entry",
                        c.rejected,
                        rejected.len()
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for QualityIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.layer)?;
        if let Some(i) = self.index {
            write!(f, "feature/row {i} ")?;
        }
        if let Some(id) = &self.id {
            write!(f, "id {id:?} ")?;
        }
        write!(
            f,
            "[{}, {}]: {}",
            self.kind,
            self.severity.code(),
            self.detail
        )
    }
}
