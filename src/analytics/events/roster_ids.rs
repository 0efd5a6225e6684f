//! The roster's ids as 128-bit hashes with each resident's index: a sink of the people stage,
//! so that cases and visits naming a resident are linked to the roster without a second read.

use std::hash::BuildHasher;

use rayon::prelude::*;

use crate::error::Result;
use crate::io::table::{Table, clean_code_ref};
use crate::model::Model;
use crate::model::build::{PeopleSink, Placed};

/// The roster's residents by id (hashed), filled chunk by chunk.
///
/// # Examples
/// ```
/// use shequ::analytics::events::RosterIds;
/// let dir = tempfile::tempdir()?;
/// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(3))?;
/// let job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
/// let mut ids = RosterIds::new(&job);
/// let build = shequ::build_with_people(&job, &shequ::NoProgress, &mut [&mut ids])?;
/// let ids = ids.finish();
/// assert_eq!(ids.len(), build.model.residents.len());
/// assert!(ids.find("no such resident").is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RosterIds {
    column: String,
    hashers: (foldhash::fast::FixedState, foldhash::fast::FixedState),
    /// (hash, resident) sorted by hash once finished.
    ids: Vec<(u128, u32)>,
}

impl RosterIds {
    /// An empty set for the roster of `job` (its `[layers.residents] id` column).
    pub fn new(job: &crate::Job) -> RosterIds {
        RosterIds::new_for(
            job.layers
                .residents
                .as_ref()
                .map(|r| r.id.clone())
                .unwrap_or_default(),
        )
    }

    fn new_for(column: String) -> RosterIds {
        RosterIds {
            column,
            hashers: (
                foldhash::fast::FixedState::with_seed(0x7e57),
                foldhash::fast::FixedState::with_seed(0x1d5),
            ),
            ids: Vec::new(),
        }
    }

    fn key(&self, id: &str) -> u128 {
        u128::from(self.hashers.0.hash_one(id)) << 64 | u128::from(self.hashers.1.hash_one(id))
    }

    /// Sorts the ids for lookups.
    pub fn finish(mut self) -> RosterIds {
        self.ids.par_sort_unstable();
        self
    }

    /// The resident (index into [`Model::residents`]) with roster id `id` (cleaned as codes
    /// are), after [`finish`](Self::finish).
    pub fn find(&self, id: &str) -> Option<u32> {
        let id = clean_code_ref(id)?;
        let k = self.key(&id);
        let i = self.ids.partition_point(|(h, _)| *h < k);
        self.ids.get(i).filter(|(h, _)| *h == k).map(|(_, r)| *r)
    }

    /// The finished ids as bytes (postcard), to send to the processes that fold cases.
    ///
    /// # Panics
    /// Never: plain data.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::model::build::part_bytes(&(&self.column, &self.ids))
    }

    /// Ids from [`to_bytes`](Self::to_bytes).
    ///
    /// # Examples
    /// ```
    /// use shequ::analytics::events::RosterIds;
    /// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
    /// let mut ids = RosterIds::new(&job);
    /// shequ::build_with_people(&job, &shequ::NoProgress, &mut [&mut ids])?;
    /// let ids = ids.finish();
    /// let again = RosterIds::from_bytes(&ids.to_bytes())?;
    /// assert_eq!(again.len(), ids.len());
    /// assert!(RosterIds::from_bytes(b"\xff").is_err());
    /// # Ok::<(), shequ::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Data`](crate::Error::Data) for bytes that are not roster ids.
    pub fn from_bytes(bytes: &[u8]) -> Result<RosterIds> {
        let (column, ids): (String, Vec<(u128, u32)>) =
            crate::model::build::from_part(bytes, "the roster's ids")?;
        let mut r = RosterIds::new_for(column);
        r.ids = ids;
        Ok(r.finish())
    }

    /// Residents held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no resident is held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl PeopleSink for RosterIds {
    fn columns(&self) -> Vec<String> {
        Vec::new()
    }

    fn header(&mut self, _names: &[String]) -> Result<()> {
        Ok(())
    }

    fn take_part(&mut self) -> Result<Vec<u8>> {
        Ok(crate::model::build::part_bytes(&std::mem::take(
            &mut self.ids,
        )))
    }

    fn absorb_part(&mut self, part: &[u8], residents: &[u32], _total: usize) -> Result<()> {
        let ids: Vec<(u128, u32)> = crate::model::build::from_part(part, "the roster's ids")?;
        for (key, r) in ids {
            let r = crate::model::build::renumber(residents, r)?;
            self.ids.push((key, r));
        }
        Ok(())
    }

    fn chunk(&mut self, _model: &Model, table: &Table, placed: &[Placed]) -> Result<()> {
        let ids = table.text_column(&self.column);
        let this = &*self;
        let found: Vec<(u128, u32)> = placed
            .par_iter()
            .filter_map(|p| {
                let id = clean_code_ref(ids.get(p.row as usize)?)?;
                Some((this.key(&id), p.resident))
            })
            .collect();
        self.ids.extend(found);
        Ok(())
    }
}
