//! Research outputs: counts per unit with small-cell and complementary suppression across
//! levels and categories.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, StringArray, UInt64Array};
use arrow_schema::{DataType, Field};

use crate::error::Result;
use crate::model::level::Layer;
use crate::model::{Lineage, Model};
use crate::output::{Counts, Tally, write_table};
use crate::privacy::suppress::{Group, Reason, Suppressed, Table};
use crate::privacy::{Finest, Policy};

/// The person-derived count columns of research tables, with their [`Tally`] index.
pub const COUNT_COLUMNS: [(&str, usize); 5] = [
    ("households", Tally::HOUSEHOLDS),
    ("residents", Tally::RESIDENTS),
    ("residents_male", Tally::MALE),
    ("residents_female", Tally::FEMALE),
    ("residents_sex_unknown", Tally::SEX_UNKNOWN),
];

/// What a row of the suppression table stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKind {
    /// A unit of a level: (level, index).
    Unit(Layer, u32),
    /// People in the parent but in none of its children: (level of the missing child).
    Remainder(Layer),
}

/// The research tables of a model: every published count, with suppression applied.
#[derive(Debug, Clone)]
pub struct ResearchTables {
    levels: Vec<Layer>,
    rows: Vec<RowKind>,
    parents: Vec<Option<usize>>,
    row_of: HashMap<(Layer, u32), usize>,
    table: Table,
    suppressed: Suppressed,
    sources: Vec<Source>,
    k: u64,
}

/// Where an output count column comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A column of the suppression table.
    Engine(usize),
    /// Zero in every row.
    Zero,
}

impl ResearchTables {
    /// Builds the hierarchy of units down to the policy's finest level (with a remainder row
    /// wherever a unit holds people outside all of its children) and suppresses it.
    ///
    /// # Errors
    /// [`Error::Data`] if the counts are inconsistent (a bug).
    ///
    /// # Examples
    /// ```
    /// use shequ::{output::research::ResearchTables, privacy::Policy, Layer};
    /// let dir = tempfile::tempdir()?;
    /// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
    /// let built = shequ::build(&shequ::Job::from_toml(dir.path().join("job.toml"))?)?;
    /// let t = ResearchTables::new(&built.model, &Policy::research(5))?;
    /// // Every published grid count is at least 5.
    /// for g in 0..built.model.grids.len() {
    ///     if let Some(n) = t.count(Layer::Grid, g as u32, "residents") {
    ///         assert!(n >= 5);
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(model: &Model, policy: &Policy) -> Result<ResearchTables> {
        let tally = Tally::of(model);
        let mut levels: Vec<Layer> = [Layer::Street, Layer::Community, Layer::Grid]
            .into_iter()
            .filter(|l| model.has(*l))
            .collect();
        if policy.finest == Finest::Building && model.has(Layer::Building) {
            levels.push(Layer::Building);
        }
        let mut rows = Vec::new();
        let mut parents = Vec::new();
        let mut values: Vec<Counts> = Vec::new();
        let mut row_of = HashMap::new();
        for &level in &levels {
            let lineages: Vec<Lineage> = match level {
                Layer::Street => model.streets.iter().map(|u| u.lineage).collect(),
                Layer::Community => model.communities.iter().map(|u| u.lineage).collect(),
                Layer::Grid => model.grids.iter().map(|u| u.lineage).collect(),
                _ => model.buildings.iter().map(|u| u.lineage).collect(),
            };
            for (i, l) in lineages.iter().enumerate() {
                // The nearest ancestor among the published levels.
                let parent = levels
                    .iter()
                    .filter(|p| **p < level)
                    .rev()
                    .find_map(|p| l.at(*p).and_then(|j| row_of.get(&(*p, j)).copied()));
                row_of.insert((level, i as u32), rows.len());
                rows.push(RowKind::Unit(level, i as u32));
                parents.push(parent);
                values.push(tally.at(level)[i]);
            }
        }
        // Remainders: people in a unit but in none of its children.
        let mut sums = vec![[0u64; 6]; rows.len()];
        let mut has_children = vec![false; rows.len()];
        for (r, p) in parents.iter().enumerate() {
            if let Some(p) = *p {
                has_children[p] = true;
                for c in 0..6 {
                    sums[p][c] += values[r][c];
                }
            }
        }
        for u in 0..has_children.len() {
            if !has_children[u] {
                continue;
            }
            let rest: Counts = std::array::from_fn(|c| values[u][c] - sums[u][c]);
            if COUNT_COLUMNS.iter().any(|(_, c)| rest[*c] != 0) {
                let RowKind::Unit(level, _) = rows[u] else {
                    unreachable!("remainders have no children")
                };
                let below = levels[levels.iter().position(|l| *l == level).expect("a level") + 1];
                rows.push(RowKind::Remainder(below));
                parents.push(Some(u));
                values.push(rest);
            }
        }
        // Sex parts that are zero in every row (no one of unknown sex, say) are structural
        // zeros: published as 0 and left out of the relation. One remaining part equals the
        // total and is published exactly as the total is.
        let sums: Vec<u64> = COUNT_COLUMNS
            .iter()
            .map(|(_, c)| values.iter().map(|v| v[*c]).sum())
            .collect();
        let parts: Vec<usize> = (2..COUNT_COLUMNS.len()).filter(|c| sums[*c] > 0).collect();
        let mut sources = vec![Source::Engine(0), Source::Engine(1)];
        let mut engine_cols = vec![0, 1];
        for (c, sum) in sums.iter().enumerate().skip(2) {
            sources.push(if *sum == 0 {
                Source::Zero
            } else if parts.len() == 1 {
                Source::Engine(1)
            } else {
                engine_cols.push(c);
                Source::Engine(engine_cols.len() - 1)
            });
        }
        let mut table = Table::new(engine_cols.iter().map(|c| COUNT_COLUMNS[*c].0));
        for (p, v) in parents.iter().zip(&values) {
            table.add_row(*p, engine_cols.iter().map(|c| v[COUNT_COLUMNS[*c].1]))?;
        }
        if engine_cols.len() > 3 {
            table.add_group(Group {
                total: 1,
                parts: (2..engine_cols.len()).collect(),
            })?;
        }
        let suppressed = table.suppress(policy.k)?;
        Ok(ResearchTables {
            levels,
            rows,
            parents,
            row_of,
            table,
            suppressed,
            sources,
            k: policy.k,
        })
    }

    /// The published value of output column `c` in row `r` (`None` if suppressed) and why it
    /// is suppressed.
    fn cell(&self, r: usize, c: usize) -> (Option<u64>, Option<Reason>) {
        match self.sources[c] {
            Source::Zero => (Some(0), None),
            Source::Engine(e) => {
                let why = self.suppressed.reason(r, e);
                (why.is_none().then(|| self.table.value(r, e)), why)
            }
        }
    }

    /// The levels with published counts, top down.
    pub fn levels(&self) -> &[Layer] {
        &self.levels
    }

    /// A unit's published count of `column` (one of [`COUNT_COLUMNS`]), or `None` if it is
    /// suppressed or the unit is not published.
    pub fn count(&self, level: Layer, unit: u32, column: &str) -> Option<u64> {
        let r = *self.row_of.get(&(level, unit))?;
        let c = COUNT_COLUMNS.iter().position(|(n, _)| *n == column)?;
        self.cell(r, c).0
    }

    /// Numbers of suppressed cells: (below k, complementary).
    pub fn suppressed_cells(&self) -> (usize, usize) {
        (self.suppressed.count(true), self.suppressed.count(false))
    }

    /// The published count columns of a level, one value per unit (null where suppressed),
    /// and a `suppressed` column naming the suppressed columns of each row.
    pub(crate) fn columns(&self, level: Layer, units: usize) -> Vec<(String, ArrayRef)> {
        let mut cols: Vec<(String, ArrayRef)> = Vec::new();
        for (c, (name, _)) in COUNT_COLUMNS.iter().enumerate() {
            let v: UInt64Array = (0..units as u32)
                .map(|u| self.cell(self.row_of[&(level, u)], c).0)
                .collect();
            cols.push(((*name).into(), Arc::new(v)));
        }
        let names: StringArray = (0..units as u32)
            .map(|u| self.suppressed_names(self.row_of[&(level, u)]))
            .collect();
        cols.push(("suppressed".into(), Arc::new(names)));
        cols
    }

    fn suppressed_names(&self, r: usize) -> Option<String> {
        let names: Vec<&str> = COUNT_COLUMNS
            .iter()
            .enumerate()
            .filter(|(c, _)| self.cell(r, *c).0.is_none())
            .map(|(_, (n, _))| *n)
            .collect();
        (!names.is_empty()).then(|| names.join(","))
    }

    fn unit_code(&self, model: &Model, r: usize) -> (Layer, Option<String>) {
        match self.rows[r] {
            RowKind::Unit(level, i) => (level, Some(model.code(level, i).to_owned())),
            RowKind::Remainder(level) => (level, None),
        }
    }

    /// Writes `remainders.parquet` (people in a unit but in none of its children, counted
    /// and suppressed like every other row) if there are any, and `suppression.parquet`
    /// (every suppressed cell: level, unit, parent, column, reason). Returns the files
    /// written.
    pub(crate) fn write_tables(&self, model: &Model, out: &std::path::Path) -> Result<Vec<String>> {
        let mut files = Vec::new();
        let rem: Vec<usize> = (0..self.rows.len())
            .filter(|r| matches!(self.rows[*r], RowKind::Remainder(_)))
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
            for (c, (name, _)) in COUNT_COLUMNS.iter().enumerate() {
                fields.push(Field::new(*name, DataType::UInt64, true));
                cols.push(Arc::new(UInt64Array::from_iter(
                    rem.iter().map(|&r| self.cell(r, c).0),
                )));
            }
            fields.push(Field::new("suppressed", DataType::Utf8, true));
            cols.push(Arc::new(StringArray::from_iter(
                rem.iter().map(|r| self.suppressed_names(*r)),
            )));
            write_table(out, "remainders.parquet", fields, cols)?;
            files.push("remainders.parquet".into());
        }
        let mut level = Vec::new();
        let mut unit = Vec::new();
        let mut parent = Vec::new();
        let mut column = Vec::new();
        let mut reason = Vec::new();
        let mut detail = Vec::new();
        for r in 0..self.rows.len() {
            for (c, (name, _)) in COUNT_COLUMNS.iter().enumerate() {
                let (None, Some(why)) = self.cell(r, c) else {
                    continue;
                };
                let (l, code) = self.unit_code(model, r);
                level.push(l.name());
                unit.push(code);
                parent.push(parent_of(r).map(|p| p.1));
                column.push(*name);
                reason.push(why.code());
                detail.push(match why {
                    Reason::BelowK => format!("count below k = {}", self.k),
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
        write_table(out, "suppression.parquet", fields, cols)?;
        files.push("suppression.parquet".into());
        Ok(files)
    }
}
