//! Small-cell suppression with complementary suppression for hierarchical tables.
//!
//! A [`Table`] holds counts for units in a hierarchy (street → community → grid → building,
//! any depth) and a set of columns. Two kinds of additive relation are published with it and
//! are therefore known to anyone reading the outputs:
//!
//! * **hierarchy**: for every unit with children and every column, the unit's count is the sum
//!   of its children's counts (callers add an explicit *remainder* row for people in the unit
//!   but in none of its children, so the relation is exact);
//! * **categories**: for every unit and every [`Group`], the total column is the sum of the
//!   group's part columns (e.g. residents = male + female + unknown). Several groups may share
//!   one total (sex and age bands both partition residents).
//!
//! [`Table::suppress`] hides every count below `k` (*primary* suppression) and then hides more
//! cells (*complementary* suppression) until every hidden cell is protected: for each hidden
//! cell there is a way to change the hidden values (keeping every published relation true)
//! that changes that cell. No hidden cell can then be recomputed by subtraction or by any
//! linear combination of the published totals, across rows, columns and levels.
//!
//! # How protection is guaranteed
//! The conditions are checked per *sub-table*: a unit `u` with its children, restricted to one
//! column group (total `t` and parts). Let `H` be the bipartite graph whose vertices are the
//! children and the part columns and whose edges are the hidden (child, part) cells.
//! * every hidden part cell of a child lies on a cycle of `H` (a "rectangle" of hidden cells
//!   whose values can be moved +d/−d without changing any sum);
//! * every hidden total cell of a child is paired with another child's hidden total connected
//!   to it in `H` of every group sharing the total;
//! * the hidden cells of `u`'s own row are all connected in `H` (and, if `u`'s total is hidden,
//!   to a child with a hidden total), so any change of `u`'s row can be passed down;
//! * every row relation and every hierarchy relation of a column outside any group has no
//!   hidden cells or at least two.
//!
//! Together these give, for each hidden cell, a change of the hidden values that keeps every
//! relation and moves that cell: changes go sideways within a sub-table and are passed down to
//! the leaves. The attack tests (`tests/all/privacy.rs`) check it independently with an exact
//! rank test over the rationals.
//!
//! # Runtime
//! Each round visits every sub-table once; bridge checks are quadratic in the hidden cells of
//! one sub-table (a unit's children × parts), never in the whole table. Rounds repeat until
//! nothing changes; suppressions only grow, so the loop ends.

mod heuristic;

use std::fmt;

use crate::error::{Error, Location, Result};
use heuristic::State;

/// Columns that add up: `total` = sum of `parts`, in every row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Index of the total column.
    pub total: usize,
    /// Indices of the part columns.
    pub parts: Vec<usize>,
}

/// Why a cell is hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Its count is below `k`.
    BelowK,
    /// Marked sensitive by the caller ([`Table::mark`]): publishing it would reveal a small
    /// count elsewhere (a nested category's difference).
    Sensitive,
    /// Hidden so that a sibling's or the parent's hidden count cannot be recovered from the
    /// column's totals.
    Siblings,
    /// Hidden so that a hidden category count of the same unit cannot be recovered from the
    /// unit's total.
    Categories,
    /// Hidden to complete a rectangle of hidden cells (unit × category) within one parent.
    Rectangle,
    /// Hidden so that a hidden count of the parent unit cannot be recovered from its children.
    Parent,
    /// A unit with a single child has the same counts as that child: both are hidden.
    OnlyChild,
    /// Not published at this level at all ([`Table::withhold`]): the column's detail stops at
    /// a coarser level. Protected like any hidden cell, listed nowhere.
    Withheld,
    /// Chosen by the optimal pass ([`Method::Optimal`]) so that a hidden count of the same
    /// column cannot be recovered from its sums across levels.
    Column,
}

/// How complementary cells are chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The heuristic for every column: cheapest cells first, sub-table by sub-table.
    Heuristic,
    /// Columns outside every group by an integer programme that hides the fewest cells
    /// ([`crate::privacy::optimal`]), kept where it hides no more than the heuristic; grouped
    /// columns by the heuristic.
    #[default]
    Optimal,
}

impl Reason {
    /// A snake_case code for output tables.
    pub fn code(self) -> &'static str {
        match self {
            Reason::BelowK => "below_k",
            Reason::Sensitive => "sensitive",
            Reason::Siblings => "complementary_siblings",
            Reason::Categories => "complementary_categories",
            Reason::Rectangle => "complementary_rectangle",
            Reason::Parent => "complementary_parent",
            Reason::OnlyChild => "complementary_only_child",
            Reason::Column => "complementary_column",
            Reason::Withheld => "withheld",
        }
    }

    /// Whether this is primary suppression.
    pub fn is_primary(self) -> bool {
        matches!(self, Reason::BelowK | Reason::Sensitive)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::BelowK => "count below the threshold k",
            Reason::Sensitive => "publishing it would reveal a count below k elsewhere",
            Reason::Siblings => {
                "complementary: protects a hidden count in the same column under the same parent"
            }
            Reason::Categories => {
                "complementary: protects a hidden category count of the same unit"
            }
            Reason::Rectangle => {
                "complementary: completes a rectangle of hidden unit × category counts"
            }
            Reason::Parent => "complementary: protects a hidden count of the parent unit",
            Reason::OnlyChild => "complementary: a unit with one child has the same counts",
            Reason::Column => "complementary: chosen by the optimal pass to protect a hidden count",
            Reason::Withheld => "not published at this level",
        })
    }
}

/// A table of counts over a hierarchy of units, ready for suppression.
///
/// # Examples
/// A community with two grids; residents are split by sex.
/// ```
/// use shequ::privacy::suppress::{Group, Table};
/// let mut t = Table::new(["residents", "male", "female"]);
/// let community = t.add_row(None, [30, 16, 14])?;
/// t.add_row(Some(community), [27, 13, 14])?;
/// t.add_row(Some(community), [3, 3, 0])?;
/// t.add_group(Group { total: 0, parts: vec![1, 2] })?;
/// let s = t.suppress(5)?;
/// // The small grid is hidden, and so is enough of the other one that it cannot be recovered.
/// assert!(s.is_hidden(2, 0) && s.is_hidden(2, 1) && s.is_hidden(2, 2));
/// assert!(s.is_hidden(1, 0));
/// assert!(!s.is_hidden(0, 0));
/// # Ok::<(), shequ::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<String>,
    parents: Vec<Option<usize>>,
    values: Vec<u64>,
    groups: Vec<Group>,
    marked: Vec<usize>,
    withheld: Vec<usize>,
}

/// The result of [`Table::suppress`]: which cells are hidden and why.
#[derive(Debug, Clone)]
pub struct Suppressed {
    ncols: usize,
    reasons: Vec<Option<Reason>>,
}

impl Suppressed {
    /// Whether cell (`row`, `col`) is hidden.
    pub fn is_hidden(&self, row: usize, col: usize) -> bool {
        self.reasons[row * self.ncols + col].is_some()
    }

    /// Why cell (`row`, `col`) is hidden, if it is.
    pub fn reason(&self, row: usize, col: usize) -> Option<Reason> {
        self.reasons[row * self.ncols + col]
    }

    /// Number of hidden cells with a primary (`true`) or complementary (`false`) reason
    /// (withheld cells are neither).
    pub fn count(&self, primary: bool) -> usize {
        self.reasons
            .iter()
            .flatten()
            .filter(|r| **r != Reason::Withheld && r.is_primary() == primary)
            .count()
    }
}

/// The primary rule of one column: which of its counts are unsafe and hidden whatever else is
/// published.
///
/// # Examples
/// ```
/// use shequ::privacy::suppress::Threshold;
/// let t = Threshold { k: 5, zeros_unsafe: false };
/// assert!(t.is_unsafe(1) && t.is_unsafe(4));
/// assert!(!t.is_unsafe(0) && !t.is_unsafe(5));
/// assert!(Threshold::strict(5).is_unsafe(0));
/// assert!(!Threshold::strict(0).is_unsafe(0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// Counts below `k` are unsafe (`k` = 0: none are).
    pub k: u64,
    /// Whether a count of 0 below `k` is unsafe too. A published zero says that nobody in the
    /// unit has the attribute; statistical offices (τ-ARGUS' default) treat it as safe.
    pub zeros_unsafe: bool,
}

impl Threshold {
    /// Every count below `k` is unsafe, zeros included.
    pub fn strict(k: u64) -> Threshold {
        Threshold {
            k,
            zeros_unsafe: true,
        }
    }

    /// Whether count `v` is unsafe.
    pub fn is_unsafe(self, v: u64) -> bool {
        v < self.k && (v > 0 || self.zeros_unsafe)
    }
}

impl Table {
    /// An empty table with the given column names.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Table {
        Table {
            columns: columns.into_iter().map(Into::into).collect(),
            parents: Vec::new(),
            values: Vec::new(),
            groups: Vec::new(),
            marked: Vec::new(),
            withheld: Vec::new(),
        }
    }

    /// Marks a cell sensitive: it is suppressed (and protected) whatever its count.
    ///
    /// # Panics
    /// If the cell does not exist.
    pub fn mark(&mut self, row: usize, col: usize) {
        assert!(
            row < self.rows() && col < self.columns.len(),
            "no such cell"
        );
        self.marked.push(row * self.columns.len() + col);
    }

    /// Withholds a cell: it is not published at all (a column's detail stops above its
    /// level), and protected like a suppressed cell so that no published sum gives it back.
    ///
    /// # Panics
    /// If the cell does not exist.
    pub fn withhold(&mut self, row: usize, col: usize) {
        assert!(
            row < self.rows() && col < self.columns.len(),
            "no such cell"
        );
        self.withheld.push(row * self.columns.len() + col);
    }

    /// Column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.parents.len()
    }

    /// A row's parent.
    pub fn parent(&self, row: usize) -> Option<usize> {
        self.parents[row]
    }

    /// The value of a cell.
    pub fn value(&self, row: usize, col: usize) -> u64 {
        self.values[row * self.columns.len() + col]
    }

    /// The groups of columns that add up.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Adds a row under `parent` (an earlier row) and returns its index.
    ///
    /// # Errors
    /// [`Error::Data`] if the parent does not exist or the number of values is wrong.
    pub fn add_row(
        &mut self,
        parent: Option<usize>,
        values: impl IntoIterator<Item = u64>,
    ) -> Result<usize> {
        let row = self.parents.len();
        if parent.is_some_and(|p| p >= row) {
            return Err(err(format!(
                "row {row}: parent {parent:?} is not an earlier row"
            )));
        }
        let before = self.values.len();
        self.values.extend(values);
        if self.values.len() - before != self.columns.len() {
            self.values.truncate(before);
            return Err(err(format!(
                "row {row}: expected {} values",
                self.columns.len()
            )));
        }
        self.parents.push(parent);
        Ok(row)
    }

    /// Declares that `group.total` is the sum of `group.parts` in every row.
    ///
    /// # Errors
    /// [`Error::Data`] if a column does not exist, a part is in another group or is a total,
    /// or the group has fewer than two parts.
    pub fn add_group(&mut self, group: Group) -> Result<()> {
        let n = self.columns.len();
        if group.total >= n || group.parts.iter().any(|&p| p >= n) {
            return Err(err("group names a column that does not exist".into()));
        }
        if group.parts.len() < 2 {
            return Err(err("a group needs at least two parts".into()));
        }
        let mut used: Vec<usize> = self
            .groups
            .iter()
            .flat_map(|g| g.parts.iter().copied())
            .collect();
        let totals: Vec<usize> = self.groups.iter().map(|g| g.total).collect();
        for &p in &group.parts {
            if p == group.total || used.contains(&p) || totals.contains(&p) {
                return Err(err(format!(
                    "column {:?} cannot be a part of two groups or both a part and a total",
                    self.columns[p]
                )));
            }
            used.push(p);
        }
        if used.contains(&group.total) {
            return Err(err(format!(
                "column {:?} is a part of another group",
                self.columns[group.total]
            )));
        }
        self.groups.push(group);
        Ok(())
    }

    /// Checks that every relation holds: row totals equal the sum of their parts and every
    /// parent equals the sum of its children.
    ///
    /// # Errors
    /// [`Error::Data`] naming the first row and column where a relation fails.
    pub fn check(&self) -> Result<()> {
        let n = self.columns.len();
        for r in 0..self.rows() {
            for g in &self.groups {
                let s: u64 = g.parts.iter().map(|&p| self.value(r, p)).sum();
                if s != self.value(r, g.total) {
                    return Err(err(format!(
                        "row {r}: {:?} is not the sum of its parts",
                        self.columns[g.total]
                    )));
                }
            }
        }
        let mut sums = vec![0u64; self.values.len()];
        let mut has_children = vec![false; self.rows()];
        for r in 0..self.rows() {
            if let Some(p) = self.parents[r] {
                has_children[p] = true;
                for c in 0..n {
                    sums[p * n + c] += self.value(r, c);
                }
            }
        }
        for r in (0..self.rows()).filter(|&r| has_children[r]) {
            for c in 0..n {
                if sums[r * n + c] != self.value(r, c) {
                    return Err(err(format!(
                        "row {r}: {:?} is not the sum of its children (add a remainder row)",
                        self.columns[c]
                    )));
                }
            }
        }
        Ok(())
    }

    /// Suppresses every count below `k` and enough others that none of them can be recovered.
    ///
    /// # Errors
    /// [`Error::Data`] if the relations do not hold (see [`Table::check`]).
    pub fn suppress(&self, k: u64) -> Result<Suppressed> {
        self.suppress_with(
            &vec![Threshold::strict(k); self.columns.len()],
            Method::Heuristic,
        )
    }

    /// Suppresses the unsafe counts of every column (its own [`Threshold`]) and enough others
    /// that none of them can be recovered.
    ///
    /// # Errors
    /// [`Error::Data`] if the relations do not hold (see [`Table::check`]) or there is not
    /// one threshold per column.
    ///
    /// # Examples
    /// A low-sensitivity column (threshold 0) is published whole; a sensitive one is not.
    /// ```
    /// use shequ::privacy::suppress::{Method, Table, Threshold};
    /// let mut t = Table::new(["residents", "disabled"]);
    /// let c = t.add_row(None, [30, 9])?;
    /// t.add_row(Some(c), [27, 7])?;
    /// t.add_row(Some(c), [3, 2])?;
    /// let s = t.suppress_with(&[Threshold::strict(0), Threshold::strict(5)], Method::Optimal)?;
    /// assert!((0..3).all(|r| !s.is_hidden(r, 0)));
    /// assert!(s.is_hidden(2, 1) && s.is_hidden(1, 1));
    /// # Ok::<(), shequ::Error>(())
    /// ```
    pub fn suppress_with(&self, thresholds: &[Threshold], method: Method) -> Result<Suppressed> {
        self.check()?;
        let n = self.columns.len();
        if thresholds.len() != n {
            return Err(err(format!(
                "{} thresholds for {n} columns",
                thresholds.len()
            )));
        }
        let mut reasons: Vec<Option<Reason>> = self
            .values
            .iter()
            .enumerate()
            .map(|(i, &v)| thresholds[i % n].is_unsafe(v).then_some(Reason::BelowK))
            .collect();
        for &c in &self.withheld {
            reasons[c] = Some(Reason::Withheld);
        }
        for &c in &self.marked {
            reasons[c].get_or_insert(Reason::Sensitive);
        }
        let mut s = State {
            t: self,
            n: self.columns.len(),
            reasons,
            changed: false,
        };
        let children = self.children();
        let standalone: Vec<usize> = (0..s.n)
            .filter(|c| {
                !self
                    .groups
                    .iter()
                    .any(|g| g.total == *c || g.parts.contains(c))
            })
            .collect();
        let mut totals: Vec<usize> = self.groups.iter().map(|g| g.total).collect();
        totals.sort_unstable();
        totals.dedup();
        loop {
            s.changed = false;
            for &c in &standalone {
                for (u, kids) in children.iter().enumerate().filter(|(_, k)| !k.is_empty()) {
                    let cells: Vec<usize> = std::iter::once(u)
                        .chain(kids.iter().copied())
                        .map(|r| r * s.n + c)
                        .collect();
                    s.at_least_two(&cells, Reason::Siblings);
                }
            }
            for r in 0..self.rows() {
                for g in &self.groups {
                    let cells: Vec<usize> = std::iter::once(g.total)
                        .chain(g.parts.iter().copied())
                        .map(|c| r * s.n + c)
                        .collect();
                    s.at_least_two(&cells, Reason::Categories);
                }
            }
            for (u, kids) in children.iter().enumerate().filter(|(_, k)| !k.is_empty()) {
                for &t in &totals {
                    s.subtable(u, kids, t);
                }
            }
            if !s.changed {
                break;
            }
        }
        if method == Method::Optimal {
            for &c in &standalone {
                self.optimise_column(&mut s.reasons, c);
            }
            self.optimise_small(&mut s.reasons, &standalone);
        }
        Ok(Suppressed {
            ncols: s.n,
            reasons: s.reasons,
        })
    }

    /// Replaces the heuristic's complementary cells of column `c` (outside every group) by
    /// the optimal programme's, where it hides no more of them.
    fn optimise_column(&self, reasons: &mut [Option<Reason>], c: usize) {
        let n = self.columns.len();
        let cell = |r: usize| r * n + c;
        let primary: Vec<bool> = (0..self.rows())
            .map(|r| reasons[cell(r)].is_some_and(|w| w.is_primary() || w == Reason::Withheld))
            .collect();
        let heuristic = (0..self.rows())
            .filter(|r| reasons[cell(*r)].is_some())
            .count();
        let values: Vec<u64> = (0..self.rows()).map(|r| self.value(r, c)).collect();
        let Some(hidden) = super::optimal::solve(&self.parents, &values, &primary) else {
            return;
        };
        if hidden.iter().filter(|h| **h).count() > heuristic {
            return;
        }
        for (r, h) in hidden.iter().enumerate() {
            if !primary[r] {
                reasons[cell(r)] = h.then_some(Reason::Column);
            }
        }
    }

    /// Solves a small table's grouped columns exactly ([`super::optimal::solve_small`]) and
    /// keeps the result where it hides no more cells than the heuristic.
    fn optimise_small(&self, reasons: &mut [Option<Reason>], standalone: &[usize]) {
        let n = self.columns.len();
        let family: Vec<usize> = (0..n).filter(|c| !standalone.contains(c)).collect();
        let cells = self.rows() * family.len();
        if family.is_empty() || cells > super::optimal::MAX_SMALL_CELLS {
            return;
        }
        let at = |r: usize, c: usize| {
            r * family.len()
                + family
                    .iter()
                    .position(|f| *f == c)
                    .expect("a family column")
        };
        let mut relations: Vec<Vec<(usize, i64)>> = Vec::new();
        for (p, kids) in self
            .children()
            .iter()
            .enumerate()
            .filter(|(_, k)| !k.is_empty())
        {
            for &c in &family {
                let mut rel = vec![(at(p, c), 1)];
                rel.extend(kids.iter().map(|k| (at(*k, c), -1)));
                relations.push(rel);
            }
        }
        for r in 0..self.rows() {
            for g in &self.groups {
                let mut rel = vec![(at(r, g.total), 1)];
                rel.extend(g.parts.iter().map(|q| (at(r, *q), -1)));
                relations.push(rel);
            }
        }
        let mut values = vec![0; cells];
        let mut fixed = vec![false; cells];
        let mut heuristic = 0;
        for r in 0..self.rows() {
            for &c in &family {
                values[at(r, c)] = self.value(r, c);
                let why = reasons[r * n + c];
                fixed[at(r, c)] = why.is_some_and(|w| w.is_primary() || w == Reason::Withheld);
                heuristic += usize::from(why.is_some());
            }
        }
        let Some(hidden) = super::optimal::solve_small(cells, &relations, &values, &fixed) else {
            return;
        };
        if hidden.iter().filter(|h| **h).count() > heuristic {
            return;
        }
        for r in 0..self.rows() {
            for &c in &family {
                if !fixed[at(r, c)] {
                    reasons[r * n + c] = hidden[at(r, c)].then_some(Reason::Column);
                }
            }
        }
    }

    fn children(&self) -> Vec<Vec<usize>> {
        let mut ch = vec![Vec::new(); self.rows()];
        for (r, p) in self.parents.iter().enumerate() {
            if let Some(p) = p {
                ch[*p].push(r);
            }
        }
        ch
    }
}

fn err(message: String) -> Error {
    Error::data(Location::default(), format!("suppression table: {message}"))
}
