//! What a run publishes: counts per unit of every level, with small-cell and complementary
//! suppression in research runs, from one suppression pass over every count column so that no
//! two output files can be differenced.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, StringArray, UInt64Array};
use arrow_schema::{DataType, Field};

use crate::error::Result;
use crate::model::Model;
use crate::model::level::Layer;
use crate::output::write_table;
use crate::privacy::dp::Noisy;
use crate::privacy::suppress::{Group, Reason, Suppressed, Table, Threshold};
use crate::privacy::{Finest, OutputKind, Policy, Sensitivity};

mod rules;

pub use crate::analytics::counts::{CountColumns, LEVELS};
use rules::{nested_marks, noise};

/// What a row of the release stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKind {
    /// A unit of a level: (level, index).
    Unit(Layer, u32),
    /// People in the parent but in none of its children: (level of the missing child).
    Remainder(Layer),
}

/// Where an output column's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A column of the suppression table.
    Engine(usize),
    /// Zero in every row.
    Zero,
}

/// Every published count of a run: per unit of every level and per remainder (people in a
/// unit but in none of its children), suppressed as the policy says.
#[derive(Debug, Clone)]
pub struct Release {
    levels: Vec<Layer>,
    rows: Vec<RowKind>,
    parents: Vec<Option<usize>>,
    row_of: HashMap<(Layer, u32), usize>,
    names: Vec<String>,
    table: Table,
    suppressed: Option<Suppressed>,
    noisy: Option<Noisy>,
    mechanism: Option<&'static str>,
    sources: Vec<Source>,
    classes: Vec<Sensitivity>,
    finest: Vec<Layer>,
    k: u64,
    k_low: u64,
}

impl Release {
    /// The base columns ([`CountColumns::base`]) released under `policy`.
    ///
    /// # Errors
    /// [`crate::Error::Data`] if the counts are inconsistent (a bug).
    ///
    /// # Examples
    /// ```
    /// use shequ::{output::release::Release, privacy::Policy, Layer};
    /// let dir = tempfile::tempdir()?;
    /// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
    /// let built = shequ::build(&shequ::Job::from_toml(dir.path().join("job.toml"))?)?;
    /// let t = Release::new(&built.model, &Policy::research(5))?;
    /// // Every published grid count is at least 5.
    /// for g in 0..built.model.grids.len() {
    ///     if let Some(n) = t.count(Layer::Grid, g as u32, "residents") {
    ///         assert!(n >= 5);
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(model: &Model, policy: &Policy) -> Result<Release> {
        Self::with_columns(model, policy, CountColumns::base(model))
    }

    /// Releases `columns`: builds the hierarchy of units down to the policy's finest level
    /// (adding a remainder row wherever a unit holds people outside all of its children) and,
    /// for a research policy, suppresses it in one pass over every column.
    ///
    /// Columns that are zero in every row are structural zeros: published as 0 and left out
    /// of their group. A column outside every group that equals an earlier column in every
    /// row (80+ residents and the oldest-old category) is suppressed exactly as that one is.
    ///
    /// # Errors
    /// [`crate::Error::Data`] if the counts are inconsistent (a bug).
    ///
    /// # Panics
    /// Never: every level of a model is one of the released levels.
    pub fn with_columns(model: &Model, policy: &Policy, cols: CountColumns) -> Result<Release> {
        let dp = policy.kind == OutputKind::ResearchDp;
        let levels = released_levels(model, policy);
        let mut rows = unit_rows(model, &levels, &cols);
        rows.add_remainders(&levels, cols.names.len(), dp)?;
        let (sources, engine_cols) = sources(&rows.values, &cols, dp);
        let engine_of = |c: usize| match sources[c] {
            Source::Engine(e) if engine_cols[e] == c => Some(e),
            _ => None,
        };
        let mut table = Table::new(engine_cols.iter().map(|c| cols.names[*c].clone()));
        for (p, v) in rows.parents.iter().zip(&rows.values) {
            table.add_row(*p, engine_cols.iter().map(|c| v[*c]))?;
        }
        for (total, parts) in &cols.groups {
            let Some(t) = engine_of(*total) else {
                continue;
            };
            let own: Vec<usize> = parts.iter().filter_map(|p| engine_of(*p)).collect();
            if own.len() >= 2 {
                table.add_group(Group {
                    total: t,
                    parts: own,
                })?;
            }
        }
        let suppressed = if policy.kind == OutputKind::Research {
            let engine = Engine {
                sources: &sources,
                width: engine_cols.len(),
                of: &engine_of,
            };
            Some(suppress_research(
                &mut table, &rows, &cols, &engine, policy,
            )?)
        } else {
            None
        };
        let noisy = if dp {
            Some(noise(
                &rows.parents,
                &rows.kinds,
                &rows.values,
                &cols,
                policy,
            )?)
        } else {
            None
        };
        Ok(Release {
            noisy,
            mechanism: policy.dp.as_ref().map(|p| p.options.mechanism.code()),
            levels,
            rows: rows.kinds,
            parents: rows.parents,
            row_of: rows.row_of,
            names: cols.names,
            table,
            suppressed,
            sources,
            classes: cols.classes,
            finest: cols.finest,
            k: policy.k,
            k_low: policy.k_low,
        })
    }

    /// Whether the counts carry differentially private noise (a `research-dp` release).
    pub fn is_noisy(&self) -> bool {
        self.noisy.is_some()
    }

    /// A noisy release's accounting: the budget per (level, table) and the noise per
    /// (level, column).
    pub fn noise(&self) -> Option<&Noisy> {
        self.noisy.as_ref()
    }

    /// A noisy release's mechanism code (`discrete_gaussian`, `discrete_laplace`).
    pub fn mechanism(&self) -> Option<&'static str> {
        self.mechanism
    }

    /// The released column names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Of the cells of columns `names` at `level`: the mean absolute difference between the
    /// published and the true count (0 for exact releases), and the number of cells. For the
    /// data holder only: it is a function of the true counts.
    pub fn mean_abs_error(&self, level: Layer, names: &[&str]) -> (f64, usize) {
        let idx: Vec<usize> = names
            .iter()
            .filter_map(|n| self.names.iter().position(|m| m == n))
            .collect();
        let mut sum = 0u64;
        let mut cells = 0usize;
        for (&(l, _), &r) in &self.row_of {
            if l != level {
                continue;
            }
            for &c in &idx {
                if let (Some(v), Source::Engine(e)) = (self.cell(r, c).0, self.sources[c]) {
                    sum += v.abs_diff(self.table.value(r, e));
                    cells += 1;
                }
            }
        }
        (
            if cells == 0 {
                0.0
            } else {
                sum as f64 / cells as f64
            },
            cells,
        )
    }

    /// The levels with published counts, top down.
    pub fn levels(&self) -> &[Layer] {
        &self.levels
    }

    /// The published value of column `c` in row `r` (`None` if suppressed) and why it is
    /// suppressed.
    fn cell(&self, r: usize, c: usize) -> (Option<u64>, Option<Reason>) {
        if let Some(noisy) = &self.noisy {
            return (Some(noisy.values[r][c]), None);
        }
        if self.is_withheld(r, c) {
            return (None, Some(Reason::Withheld));
        }
        match self.sources[c] {
            Source::Zero => (Some(0), None),
            Source::Engine(e) => {
                let why = self.suppressed.as_ref().and_then(|s| s.reason(r, e));
                (why.is_none().then(|| self.table.value(r, e)), why)
            }
        }
    }

    /// Whether cell (`r`, `c`) is withheld: not published at its level at all.
    fn is_withheld(&self, r: usize, c: usize) -> bool {
        let (RowKind::Unit(level, _) | RowKind::Remainder(level)) = self.rows[r];
        self.suppressed.is_some() && level > self.finest[c]
    }

    /// Whether `column` is withheld at `level` (its detail stops above it).
    pub fn withheld(&self, level: Layer, column: &str) -> bool {
        let (Some(c), Some(r)) = (
            self.names.iter().position(|n| n == column),
            self.row_of
                .iter()
                .find(|((l, _), _)| *l == level)
                .map(|x| *x.1),
        ) else {
            return false;
        };
        self.is_withheld(r, c)
    }

    /// A unit's published count of `column`, or `None` if it is suppressed or not published.
    pub fn count(&self, level: Layer, unit: u32, column: &str) -> Option<u64> {
        let r = *self.row_of.get(&(level, unit))?;
        let c = self.names.iter().position(|n| n == column)?;
        self.cell(r, c).0
    }

    /// The sensitivity class of a released column.
    pub fn class(&self, column: &str) -> Option<Sensitivity> {
        let c = self.names.iter().position(|n| n == column)?;
        Some(self.classes[c])
    }

    /// Of the cells of columns `names` at `level` (one per unit and column, released columns
    /// only): how many are published, and how many there are.
    pub fn published(&self, level: Layer, names: &[&str]) -> (usize, usize) {
        let idx: Vec<usize> = names
            .iter()
            .filter_map(|n| self.names.iter().position(|m| m == n))
            .collect();
        let rows: Vec<usize> = self
            .row_of
            .iter()
            .filter(|((l, _), _)| *l == level)
            .map(|(_, r)| *r)
            .collect();
        let cells: Vec<(usize, usize)> = rows
            .iter()
            .flat_map(|r| idx.iter().map(move |c| (*r, *c)))
            .filter(|(r, c)| !self.is_withheld(*r, *c))
            .collect();
        let published = cells
            .iter()
            .filter(|(r, c)| self.cell(*r, *c).0.is_some())
            .count();
        (published, cells.len())
    }

    /// Numbers of suppressed cells: (below k or sensitive, complementary).
    pub fn suppressed_cells(&self) -> Option<(usize, usize)> {
        self.suppressed
            .as_ref()
            .map(|s| (s.count(true), s.count(false)))
    }

    /// The published columns `names` of a level, one value per unit (null where suppressed),
    /// and a `suppressed` column naming the suppressed ones of each row (research only).
    pub(crate) fn arrays(
        &self,
        level: Layer,
        units: usize,
        names: &[&str],
    ) -> Vec<(String, ArrayRef)> {
        let idx = self.indices(names);
        let mut cols: Vec<(String, ArrayRef)> = Vec::new();
        for (&c, name) in idx.iter().zip(names) {
            let v: UInt64Array = (0..units as u32)
                .map(|u| self.cell(self.row_of[&(level, u)], c).0)
                .collect();
            cols.push(((*name).into(), Arc::new(v)));
        }
        if self.suppressed.is_some() {
            let s: StringArray = (0..units as u32)
                .map(|u| self.suppressed_names(self.row_of[&(level, u)], &idx))
                .collect();
            cols.push(("suppressed".into(), Arc::new(s)));
        }
        cols
    }

    /// The indices of released columns.
    ///
    /// # Panics
    /// If a name is not a released column (a programming error).
    fn indices(&self, names: &[&str]) -> Vec<usize> {
        names
            .iter()
            .map(|n| {
                self.names
                    .iter()
                    .position(|m| m == n)
                    .expect("a released column")
            })
            .collect()
    }

    fn suppressed_names(&self, r: usize, idx: &[usize]) -> Option<String> {
        let names: Vec<&str> = idx
            .iter()
            .filter(|c| self.cell(r, **c).0.is_none() && !self.is_withheld(r, **c))
            .map(|c| self.names[*c].as_str())
            .collect();
        (!names.is_empty()).then(|| names.join(","))
    }

    fn unit_code(&self, model: &Model, r: usize) -> (Layer, Option<String>) {
        match self.rows[r] {
            RowKind::Unit(level, i) => (level, Some(model.code(level, i).to_owned())),
            RowKind::Remainder(level) => (level, None),
        }
    }

    /// Writes `<dir>/remainders.parquet` (people in a unit but in none of its children, for
    /// the columns `names`) if there are any, and in research runs `<dir>/suppression.parquet`
    /// (every suppressed cell of those columns: level, unit, parent, column, reason). Returns
    /// the files written, relative to `out`.
    pub(crate) fn write_tables(
        &self,
        model: &Model,
        out: &crate::output::Out,
        dir: &str,
        names: &[&str],
    ) -> Result<Vec<String>> {
        let idx = self.indices(names);
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut files = Vec::new();
        // A table's remainders: the rows at a level its columns are counted at (cases are
        // counted down to grids, not buildings: their cells in building-level remainders are
        // withheld in research releases, and mean nothing in operational ones).
        let rank = |l: Layer| {
            self.levels
                .iter()
                .position(|x| *x == l)
                .unwrap_or(usize::MAX)
        };
        let rem: Vec<usize> = (0..self.rows.len())
            .filter(|&r| match self.rows[r] {
                RowKind::Remainder(below) => {
                    idx.iter().any(|&c| rank(below) <= rank(self.finest[c]))
                }
                RowKind::Unit(..) => false,
            })
            .collect();
        let parent_of = |r: usize| {
            self.parents[r]
                .map(|p| self.unit_code(model, p))
                .map(|(l, c)| (l, c.unwrap_or_default()))
        };
        if !rem.is_empty() {
            let mut fields = vec![
                Field::new("level", DataType::Utf8, false),
                Field::new("parent_level", DataType::Utf8, false),
                Field::new("parent_id", DataType::Utf8, false),
            ];
            let mut cols: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from_iter_values(
                    rem.iter().map(|r| self.unit_code(model, *r).0.name()),
                )),
                Arc::new(StringArray::from_iter_values(
                    rem.iter()
                        .map(|r| parent_of(*r).expect("a parent").0.name()),
                )),
                Arc::new(StringArray::from_iter_values(
                    rem.iter().map(|r| parent_of(*r).expect("a parent").1),
                )),
            ];
            for (&c, name) in idx.iter().zip(names) {
                fields.push(Field::new(*name, DataType::UInt64, true));
                cols.push(Arc::new(UInt64Array::from_iter(
                    rem.iter().map(|&r| self.cell(r, c).0),
                )));
            }
            if self.suppressed.is_some() {
                fields.push(Field::new("suppressed", DataType::Utf8, true));
                cols.push(Arc::new(StringArray::from_iter(
                    rem.iter().map(|r| self.suppressed_names(*r, &idx)),
                )));
            }
            let name = format!("{prefix}remainders.parquet");
            write_table(out, &name, fields, cols)?;
            files.push(name);
        }
        if self.suppressed.is_none() {
            return Ok(files);
        }
        let mut level = Vec::new();
        let mut unit = Vec::new();
        let mut parent = Vec::new();
        let mut column = Vec::new();
        let mut reason = Vec::new();
        let mut detail = Vec::new();
        let mut in_rem = vec![false; self.rows.len()];
        for &r in &rem {
            in_rem[r] = true;
        }
        let shown = |r: usize| matches!(self.rows[r], RowKind::Unit(..)) || in_rem[r];
        for r in (0..self.rows.len()).filter(|r| shown(*r)) {
            for (&c, name) in idx.iter().zip(names) {
                let (None, Some(why)) = self.cell(r, c) else {
                    continue;
                };
                if why == Reason::Withheld {
                    continue;
                }
                let (l, code) = self.unit_code(model, r);
                level.push(l.name());
                unit.push(code);
                parent.push(parent_of(r).map(|p| p.1));
                column.push(*name);
                reason.push(why.code());
                detail.push(match why {
                    Reason::BelowK => match self.classes[c] {
                        Sensitivity::Low => {
                            format!("low-sensitivity count below k_low = {}", self.k_low)
                        }
                        Sensitivity::Sensitive => format!("sensitive count below k = {}", self.k),
                    },
                    Reason::Sensitive => format!(
                        "a sensitive count it lies in, less this one, would be below k = {}",
                        self.k
                    ),
                    other => other.to_string(),
                });
            }
        }
        let fields = vec![
            Field::new("level", DataType::Utf8, false),
            Field::new("unit_id", DataType::Utf8, true),
            Field::new("parent_id", DataType::Utf8, true),
            Field::new("column", DataType::Utf8, false),
            Field::new("reason", DataType::Utf8, false),
            Field::new("detail", DataType::Utf8, false),
        ];
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(level)),
            Arc::new(StringArray::from(unit)),
            Arc::new(StringArray::from(parent)),
            Arc::new(StringArray::from_iter_values(column)),
            Arc::new(StringArray::from_iter_values(reason)),
            Arc::new(StringArray::from_iter_values(detail)),
        ];
        let name = format!("{prefix}suppression.parquet");
        write_table(out, &name, fields, cols)?;
        files.push(name);
        Ok(files)
    }
}

/// The release's rows before suppression: units of every released level top down, then the
/// remainders; each row's parent row and count values.
struct Rows {
    kinds: Vec<RowKind>,
    parents: Vec<Option<usize>>,
    values: Vec<Vec<u64>>,
    row_of: HashMap<(Layer, u32), usize>,
}

/// The levels a policy publishes: street, community, grid where the model has them, and the
/// building in operational runs or where the finest level is the building.
fn released_levels(model: &Model, policy: &Policy) -> Vec<Layer> {
    let mut levels: Vec<Layer> = [Layer::Street, Layer::Community, Layer::Grid]
        .into_iter()
        .filter(|l| model.has(*l))
        .collect();
    if (!policy.kind.is_aggregate() || policy.finest == Finest::Building)
        && model.has(Layer::Building)
    {
        levels.push(Layer::Building);
    }
    levels
}

/// One row per unit of every released level, its parent the nearest ancestor among them.
fn unit_rows(model: &Model, levels: &[Layer], cols: &CountColumns) -> Rows {
    let mut r = Rows {
        kinds: Vec::new(),
        parents: Vec::new(),
        values: Vec::new(),
        row_of: HashMap::new(),
    };
    for &level in levels {
        let li = LEVELS.iter().position(|l| *l == level).expect("a level");
        for i in 0..model.units(level) {
            let l = model.lineage(level, i as u32);
            let parent = levels
                .iter()
                .filter(|p| **p < level)
                .rev()
                .find_map(|p| l.at(*p).and_then(|j| r.row_of.get(&(*p, j)).copied()));
            r.row_of.insert((level, i as u32), r.kinds.len());
            r.kinds.push(RowKind::Unit(level, i as u32));
            r.parents.push(parent);
            r.values.push(cols.values[li][i].clone());
        }
    }
    r
}

impl Rows {
    /// Remainders: people in a unit but in none of its children (under every unit with
    /// children in a noisy release, whether anyone is in it or not: which rows exist must not
    /// depend on the roster).
    fn add_remainders(&mut self, levels: &[Layer], n: usize, dp: bool) -> Result<()> {
        let mut sums = vec![vec![0u64; n]; self.kinds.len()];
        let mut has_children = vec![false; self.kinds.len()];
        for (r, p) in self.parents.iter().enumerate() {
            if let Some(p) = *p {
                has_children[p] = true;
                for (s, v) in sums[p].iter_mut().zip(&self.values[r]) {
                    *s += v;
                }
            }
        }
        for u in 0..has_children.len() {
            if !has_children[u] {
                continue;
            }
            let rest: Vec<u64> = (0..n)
                .map(|c| self.values[u][c].checked_sub(sums[u][c]))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    crate::error::Error::data(
                        crate::error::Location::default(),
                        "a unit counts fewer people than its children (inconsistent lineages)",
                    )
                })?;
            let RowKind::Unit(level, _) = self.kinds[u] else {
                unreachable!("remainders have no children")
            };
            let below = levels[levels.iter().position(|l| *l == level).expect("a level") + 1];
            if dp || rest.iter().any(|v| *v != 0) {
                self.kinds.push(RowKind::Remainder(below));
                self.parents.push(Some(u));
                self.values.push(rest);
            }
        }
        Ok(())
    }
}

/// Where each column's values come from (structural zeros and duplicates are not given to
/// the engine; a noisy release noises every column), and the engine's columns.
fn sources(values: &[Vec<u64>], cols: &CountColumns, dp: bool) -> (Vec<Source>, Vec<usize>) {
    let n = cols.names.len();
    let column = |c: usize| values.iter().map(move |v| v[c]);
    let grouped: Vec<bool> = (0..n)
        .map(|c| cols.groups.iter().any(|(t, p)| *t == c || p.contains(&c)))
        .collect();
    let mut sources = Vec::with_capacity(n);
    let mut engine_cols: Vec<usize> = Vec::new();
    for (c, in_group) in grouped.iter().enumerate() {
        // Which columns are zero or equal is data: a noisy release noises every one.
        let source = if dp {
            engine_cols.push(c);
            Source::Engine(c)
        } else if column(c).all(|v| v == 0) {
            Source::Zero
        } else if let Some(e) = engine_cols
            .iter()
            .position(|&d| !in_group && cols.finest[d] == cols.finest[c] && column(d).eq(column(c)))
        {
            Source::Engine(e)
        } else {
            engine_cols.push(c);
            Source::Engine(engine_cols.len() - 1)
        };
        sources.push(source);
    }
    (sources, engine_cols)
}

/// The engine's view of the columns: each column's source, the number of engine columns,
/// and a column's own engine column (`None` for zeros and duplicates).
struct Engine<'a> {
    sources: &'a [Source],
    width: usize,
    of: &'a dyn Fn(usize) -> Option<usize>,
}

/// The research pass: cells below each column's finest level withheld, thresholds by the
/// sensitivity class, nested cells marked, then primary and complementary suppression.
fn suppress_research(
    table: &mut Table,
    rows: &Rows,
    cols: &CountColumns,
    engine: &Engine<'_>,
    policy: &Policy,
) -> Result<Suppressed> {
    for (r, kind) in rows.kinds.iter().enumerate() {
        let (RowKind::Unit(level, _) | RowKind::Remainder(level)) = *kind;
        for (c, finest) in cols.finest.iter().enumerate() {
            if level > *finest
                && let Some(e) = (engine.of)(c)
            {
                table.withhold(r, e);
            }
        }
    }
    let mut class = vec![Sensitivity::Low; engine.width];
    for (c, source) in engine.sources.iter().enumerate() {
        if let Source::Engine(e) = source {
            class[*e] = class[*e].max(cols.classes[c]);
        }
    }
    let thresholds: Vec<Threshold> = class.iter().map(|c| policy.threshold(*c)).collect();
    let unsafe_cell = |c: usize, v: u64| (engine.of)(c).is_some_and(|e| thresholds[e].is_unsafe(v));
    for (r, sub) in nested_marks(&rows.values, cols, &unsafe_cell, policy) {
        // A column of zeros is published as such; a duplicate is hidden with the column it
        // duplicates.
        if let Source::Engine(e) = engine.sources[sub] {
            table.mark(r, e);
        }
    }
    table.suppress_with(&thresholds, policy.complementary)
}
