//! The count columns a release publishes: names, classes, levels, bounds and the relations
//! between them.

use crate::model::Model;
use crate::model::level::Layer;
use crate::privacy::Sensitivity;

use super::{LEVELS, Tally};

/// Count columns of people per unit, with the relations between them.
#[derive(Debug, Clone, Default)]
pub struct CountColumns {
    /// Column names.
    pub names: Vec<String>,
    /// Each column's sensitivity class (parallel to `names`).
    pub classes: Vec<Sensitivity>,
    /// Each column's finest published level in research releases (parallel to `names`):
    /// below it the column is withheld.
    pub finest: Vec<Layer>,
    /// Each column's table in a differentially private release (`base`, `special_needs`,
    /// `coverage`).
    pub table: Vec<&'static str>,
    /// Each column's bound: the most one resident changes its count in one unit (`None`:
    /// unbounded, refused by a differentially private release).
    pub bound: Vec<Option<u64>>,
    /// Groups: a total column index and its part column indices (parts add up to the total).
    pub groups: Vec<(usize, Vec<usize>)>,
    /// Nested pairs (sub, sup): every person counted in `sub` is counted in `sup`. Where
    /// `sup` is sensitive and published, a `sub` cell is published only if `sup − sub` is 0 or
    /// at least `k` too (the difference is a sensitive count of its own).
    pub nested: Vec<(usize, usize)>,
    /// Per level of [`LEVELS`]: one row of values per unit (in model order).
    pub values: [Vec<Vec<u64>>; 4],
}

impl CountColumns {
    /// Households, residents and residents by sex (`residents` = male + female + unknown).
    ///
    /// # Examples
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
    /// let built = shequ::build(&shequ::Job::from_toml(dir.path().join("job.toml"))?)?;
    /// let c = shequ::output::release::CountColumns::base(&built.model);
    /// assert_eq!(c.names[1], "residents");
    /// assert_eq!(c.values[2].len(), built.model.grids.len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn base(model: &Model) -> CountColumns {
        Self::from_tally(&Tally::of(model))
    }

    /// [`CountColumns::base`] from counts already made.
    pub fn from_tally(tally: &Tally) -> CountColumns {
        let idx = [
            Tally::HOUSEHOLDS,
            Tally::RESIDENTS,
            Tally::MALE,
            Tally::FEMALE,
            Tally::SEX_UNKNOWN,
        ];
        CountColumns {
            names: [
                "households",
                "residents",
                "residents_male",
                "residents_female",
                "residents_sex_unknown",
            ]
            .map(String::from)
            .to_vec(),
            classes: vec![Sensitivity::Low; 5],
            finest: vec![Layer::Building; 5],
            table: vec!["base"; 5],
            bound: vec![Some(1); 5],
            groups: vec![(1, vec![2, 3, 4])],
            nested: Vec::new(),
            values: LEVELS.map(|l| {
                tally
                    .at(l)
                    .iter()
                    .map(|c| idx.iter().map(|i| c[*i]).collect())
                    .collect()
            }),
        }
    }

    /// Appends columns (with their values per level, in the same unit order) and relations
    /// given in the appended columns' own indices.
    pub fn append(&mut self, more: CountColumns) {
        let off = self.names.len();
        self.names.extend(more.names);
        self.classes.extend(more.classes);
        self.finest.extend(more.finest);
        self.table.extend(more.table);
        self.bound.extend(more.bound);
        self.groups.extend(
            more.groups
                .into_iter()
                .map(|(t, p)| (t + off, p.into_iter().map(|x| x + off).collect())),
        );
        self.nested
            .extend(more.nested.into_iter().map(|(a, b)| (a + off, b + off)));
        for (mine, theirs) in self.values.iter_mut().zip(more.values) {
            for (row, extra) in mine.iter_mut().zip(theirs) {
                row.extend(extra);
            }
        }
    }

    /// The index of a column.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}
