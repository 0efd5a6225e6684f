//! The households as a polars frame: the library's in-memory view for the data owner.

use polars::prelude::*;

use crate::error::{Error, Location, Result};
use crate::model::level::Layer;
use crate::model::{Lineage, Model};
impl Model {
    /// Households as a polars `DataFrame`: `household_id`, `building_id`, `grid_id`,
    /// `community_id`, `street_id` (null where absent or unplaced), `residents`, `placed`,
    /// `source_index`. Locations are not included (they are person-level data).
    ///
    /// The household ids are plain: this is the library's in-memory view for the data owner's
    /// own code. Files for others go through [`write_model`](crate::output::write_model) and the job's privacy policy
    /// (research tables, or pseudonymised operational lists).
    ///
    /// # Examples
    /// ```
    /// use polars::prelude::*;
    /// let dir = tempfile::tempdir()?;
    /// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
    /// let built = shequ::build(&shequ::Job::from_toml(dir.path().join("job.toml"))?)?;
    /// let per_grid = built
    ///     .model
    ///     .households_frame()?
    ///     .lazy()
    ///     .filter(col("placed"))
    ///     .group_by([col("grid_id")])
    ///     .agg([len().alias("households")])
    ///     .collect()?;
    /// assert_eq!(per_grid.height(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Polars`] (should not happen).
    pub fn households_frame(&self) -> Result<DataFrame> {
        let h = &self.households;
        let code = |layer: Layer, l: &Lineage| l.at(layer).map(|i| self.code(layer, i));
        let col = |layer: Layer| -> Column {
            let v: Vec<Option<&str>> = h.iter().map(|x| code(layer, &x.lineage)).collect();
            Column::new(format!("{}_id", layer.singular()).into(), v)
        };
        DataFrame::new_infer_height(vec![
            Column::new(
                "household_id".into(),
                h.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            ),
            col(Layer::Building),
            col(Layer::Grid),
            col(Layer::Community),
            col(Layer::Street),
            Column::new(
                "residents".into(),
                h.iter().map(|x| x.residents).collect::<Vec<u32>>(),
            ),
            Column::new(
                "placed".into(),
                h.iter().map(|x| x.placed).collect::<Vec<bool>>(),
            ),
            Column::new(
                "source_index".into(),
                h.iter()
                    .map(|x| x.source_index as u64)
                    .collect::<Vec<u64>>(),
            ),
        ])
        .map_err(|e| Error::Polars {
            at: Location::layer("households"),
            source: Box::new(e),
        })
    }
}
