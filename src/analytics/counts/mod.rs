//! Counts of people per unit: the merged state every count table is published from. The
//! tally (buildings, households, residents by sex) and the count columns with their classes,
//! bounds and relations, which the privacy pass reads before any writer sees a table.

use crate::model::level::Layer;
use crate::model::{Lineage, Model, Sex};

mod columns;

pub use columns::CountColumns;

/// The published levels, top down.
pub const LEVELS: [Layer; 4] = [
    Layer::Street,
    Layer::Community,
    Layer::Grid,
    Layer::Building,
];

/// Counts per unit of one level: see the `Tally` index constants.
pub type Counts = [u64; 6];

/// Counts of buildings, households and residents (by sex) per unit of every level, from
/// placed households. Index each unit's [`Counts`] with [`Tally::BUILDINGS`],
/// [`Tally::HOUSEHOLDS`], [`Tally::RESIDENTS`], [`Tally::MALE`], [`Tally::FEMALE`] and
/// [`Tally::SEX_UNKNOWN`].
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Per street.
    pub streets: Vec<Counts>,
    /// Per community.
    pub communities: Vec<Counts>,
    /// Per grid.
    pub grids: Vec<Counts>,
    /// Per building (its buildings count is 1).
    pub buildings: Vec<Counts>,
}

impl Tally {
    /// Index of the number of buildings.
    pub const BUILDINGS: usize = 0;
    /// Index of the number of placed households.
    pub const HOUSEHOLDS: usize = 1;
    /// Index of the number of residents of placed households.
    pub const RESIDENTS: usize = 2;
    /// Index of male residents.
    pub const MALE: usize = 3;
    /// Index of female residents.
    pub const FEMALE: usize = 4;
    /// Index of residents whose sex is not known.
    pub const SEX_UNKNOWN: usize = 5;

    /// Counts buildings, placed households and their residents per unit.
    ///
    /// # Examples
    /// ```
    /// use shequ::output::Tally;
    /// let dir = tempfile::tempdir()?;
    /// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
    /// let built = shequ::build(&shequ::Job::from_toml(dir.path().join("job.toml"))?)?;
    /// let tally = Tally::of(&built.model);
    /// let households: u64 = tally.grids.iter().map(|g| g[Tally::HOUSEHOLDS]).sum();
    /// assert_eq!(households as usize, built.model.households.iter().filter(|h| h.placed).count());
    /// for g in &tally.grids {
    ///     assert_eq!(g[Tally::RESIDENTS], g[Tally::MALE] + g[Tally::FEMALE] + g[Tally::SEX_UNKNOWN]);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn of(model: &Model) -> Tally {
        let mut t = Tally {
            streets: vec![[0; 6]; model.streets.len()],
            communities: vec![[0; 6]; model.communities.len()],
            grids: vec![[0; 6]; model.grids.len()],
            buildings: vec![[0; 6]; model.buildings.len()],
        };
        let mut add = |l: &Lineage, k: usize, n: u64| {
            for (v, idx) in [
                (&mut t.streets, l.street),
                (&mut t.communities, l.community),
                (&mut t.grids, l.grid),
                (&mut t.buildings, l.building),
            ] {
                if let Some(i) = idx {
                    v[i as usize][k] += n;
                }
            }
        };
        for b in &model.buildings {
            add(&b.lineage, Self::BUILDINGS, 1);
        }
        for h in model.households.iter().filter(|h| h.placed) {
            add(&h.lineage, Self::HOUSEHOLDS, 1);
            add(&h.lineage, Self::RESIDENTS, h.residents as u64);
        }
        for r in &model.residents {
            let h = &model.households[r.household as usize];
            let k = match r.sex {
                Sex::Male => Self::MALE,
                Sex::Female => Self::FEMALE,
                Sex::Unknown => Self::SEX_UNKNOWN,
            };
            add(&h.lineage, k, 1);
        }
        t
    }

    /// The counts at a level.
    pub fn at(&self, layer: Layer) -> &[Counts] {
        match layer {
            Layer::Street => &self.streets,
            Layer::Community => &self.communities,
            Layer::Grid => &self.grids,
            Layer::Building => &self.buildings,
            _ => &[],
        }
    }
}
