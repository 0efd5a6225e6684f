//! The job's cross-key checks: each column maps to one key, and every CRS named is one PROJ
//! can use.

use super::Job;
use crate::error::Error;

/// A layer's column keys (`id`, `parent`, ...) and the columns they name, if set.
type ColumnKeys<'a> = Vec<(&'static str, Option<&'a String>)>;

impl Job {
    /// Every layer maps each of its columns to one key only: a column that serves as two keys
    /// (`id` and `household`, say) is a mistake in the job, reported with both keys.
    pub(super) fn check_columns(&self) -> std::result::Result<(), String> {
        for (layer, keys) in self.column_keys() {
            let keys: Vec<(&str, &String)> = keys
                .into_iter()
                .filter_map(|(k, c)| c.map(|c| (k, c)))
                .collect();
            for (i, (k1, c1)) in keys.iter().enumerate() {
                if let Some((k2, _)) = keys[i + 1..].iter().find(|(_, c2)| c2.trim() == c1.trim()) {
                    return Err(format!(
                        "[layers.{layer}] maps column {c1:?} twice, as `{k1}` and as `{k2}`; \
                         each key needs a column of its own"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Each layer's column keys and the columns they name.
    fn column_keys(&self) -> Vec<(&'static str, ColumnKeys<'_>)> {
        let l = &self.layers;
        let mut layers = Vec::new();
        for (name, layer) in [
            ("streets", &l.streets),
            ("communities", &l.communities),
            ("grids", &l.grids),
            ("buildings", &l.buildings),
        ] {
            if let Some(s) = layer {
                let keys = vec![("id", Some(&s.id)), ("name", s.name.as_ref())];
                layers.push((name, [keys, vec![("parent", s.parent.as_ref())]].concat()));
            }
        }
        if let Some(f) = &l.facilities {
            let keys = vec![("id", Some(&f.id)), ("name", f.name.as_ref())];
            let more = vec![("kind", Some(&f.kind)), ("capacity", f.capacity.as_ref())];
            layers.push(("facilities", [keys, more].concat()));
        }
        if let Some(h) = &l.households {
            let keys = vec![("id", Some(&h.id)), ("building", h.building.as_ref())];
            let more = vec![("lon", h.lon.as_ref()), ("lat", h.lat.as_ref())];
            layers.push(("households", [keys, more].concat()));
        }
        if let Some(r) = &l.residents {
            let keys = vec![("id", Some(&r.id)), ("household", Some(&r.household))];
            let more = vec![
                ("name", r.name.as_ref()),
                ("id_number", r.id_number.as_ref()),
                ("phone", r.phone.as_ref()),
                ("sex", r.sex.as_ref()),
            ];
            layers.push(("residents", [keys, more].concat()));
        }
        layers
    }

    /// Every CRS the job names is one PROJ can use, checked when the job is read so that the
    /// error names the key.
    pub(super) fn check_crs(&self) -> std::result::Result<(), String> {
        let check = |key: &str, v: &str| {
            crate::crs::Crs::parse(v).map(drop).map_err(|e| {
                format!(
                    "{key} = {:?}: {}",
                    crate::error::excerpt(v),
                    crs_message(&e)
                )
            })
        };
        // (The options' CRSs are parsed and checked as the job is deserialised.)
        let l = &self.layers;
        let layer_crs = [
            ("streets", l.streets.as_ref().and_then(|s| s.crs.as_ref())),
            (
                "communities",
                l.communities.as_ref().and_then(|s| s.crs.as_ref()),
            ),
            ("grids", l.grids.as_ref().and_then(|s| s.crs.as_ref())),
            (
                "buildings",
                l.buildings.as_ref().and_then(|s| s.crs.as_ref()),
            ),
            (
                "facilities",
                l.facilities.as_ref().and_then(|s| s.crs.as_ref()),
            ),
            (
                "households",
                l.households.as_ref().and_then(|s| s.crs.as_ref()),
            ),
        ];
        for (layer, crs) in layer_crs {
            if let Some(c) = crs {
                check(&format!("layers.{layer}.crs"), c)?;
            }
        }
        Ok(())
    }
}

/// The message of a CRS error without its (empty) location.
fn crs_message(e: &Error) -> String {
    match e {
        Error::Crs { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
