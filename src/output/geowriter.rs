//! The spatial-table writer: GeoParquet (and GeoJSON) in the output CRSs, with provenance.

use std::collections::HashMap;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, StringArray, UInt64Array};
use geo::Geometry;
use serde_json::json;

use super::{Out, Written};
use crate::crs::{Crs, Transformer};
use crate::error::{Error, Location, Result};
use crate::io::geoparquet;
use crate::model::build::Build;
use crate::model::level::Layer;

/// The value of row `i` of an Arrow array as JSON (the types output tables use).
pub(crate) fn json_value(a: &ArrayRef, i: usize) -> serde_json::Value {
    use arrow_array::Array;
    if a.is_null(i) {
        return serde_json::Value::Null;
    }
    let any = a.as_any();
    if let Some(v) = any.downcast_ref::<StringArray>() {
        json!(v.value(i))
    } else if let Some(v) = any.downcast_ref::<Float64Array>() {
        json!(v.value(i))
    } else if let Some(v) = any.downcast_ref::<UInt64Array>() {
        json!(v.value(i))
    } else if let Some(v) = any.downcast_ref::<BooleanArray>() {
        json!(v.value(i))
    } else {
        serde_json::Value::Null
    }
}

/// Where a layer's geometry came from, for the provenance metadata of its outputs.
pub(crate) fn provenance(build: &Build, layer: Layer, steps: &[String]) -> serde_json::Value {
    let input = build.inputs.iter().find(|i| i.layer == layer);
    let mut conversions: Vec<String> = input.map(|i| i.conversions.clone()).unwrap_or_default();
    conversions.extend(steps.iter().cloned());
    json!({
        "shequ:source": input
            .map(|i| i.path.display().to_string())
            .unwrap_or_else(|| "derived by dissolving the level below".into()),
        "shequ:source_crs": input.and_then(|i| i.crs.clone()),
        "shequ:working_crs": build.model.working_crs.definition(),
        "shequ:conversions": conversions,
    })
}

/// Writes spatial layers as GeoParquet (and GeoJSON), with provenance.
pub(crate) struct GeoWriter<'a> {
    pub(crate) build: &'a Build,
    pub(crate) out: &'a Out,
    pub(crate) output_crs: &'a Crs,
    pub(crate) to_out: Transformer,
    pub(crate) to_json: Option<(Transformer, &'a Crs)>,
    pub(crate) written: Written,
    /// The last geometries transformed for each (layer, GeoJSON?) pair, as given and as
    /// transformed: every file of a level (the level table, its special-needs and coverage
    /// tables) carries the same unit geometries, which are transformed once.
    pub(crate) transformed: HashMap<(Layer, bool), (Geometries, Geometries)>,
    /// A noisy release: per level, each count column's noise (scale and 95% half-width),
    /// stated in the metadata of every table of that level.
    pub(crate) accuracy: HashMap<Layer, serde_json::Map<String, serde_json::Value>>,
}

/// One file's geometries, in row order.
pub(crate) type Geometries = Vec<Option<Geometry<f64>>>;

impl GeoWriter<'_> {
    /// The noise of the count columns among `cols` at `layer`, in a noisy release.
    pub(crate) fn table_accuracy(
        &self,
        layer: Layer,
        cols: &[(String, ArrayRef)],
    ) -> Option<serde_json::Value> {
        let all = self.accuracy.get(&layer)?;
        let mine: serde_json::Map<String, serde_json::Value> = cols
            .iter()
            .filter_map(|(n, _)| all.get(n).map(|a| (n.clone(), a.clone())))
            .collect();
        (!mine.is_empty()).then_some(serde_json::Value::Object(mine))
    }

    pub(crate) fn write(
        &mut self,
        layer: Layer,
        cols: Vec<(String, ArrayRef)>,
        geoms: Vec<Option<Geometry<f64>>>,
    ) -> Result<()> {
        self.write_as(layer.name(), layer, cols, geoms)
    }

    /// Writes `<stem>.parquet` and `<stem>.geojson` (stem relative to the output directory)
    /// with the provenance of `layer`.
    pub(crate) fn write_as(
        &mut self,
        stem: &str,
        layer: Layer,
        cols: Vec<(String, ArrayRef)>,
        geoms: Vec<Option<Geometry<f64>>>,
    ) -> Result<()> {
        if let Some((t, crs)) = self.to_json.as_ref().filter(|_| !self.out.is_memory()) {
            let g = match self.transformed.get(&(layer, true)) {
                Some((given, done)) if *given == geoms => done.clone(),
                _ => {
                    let mut g = geoms.clone();
                    let failed = t.transform_geometries(&mut g)?;
                    if let Some((i, why)) = failed.first() {
                        return Err(Error::crs(
                            Location::layer(layer.name()).index(*i),
                            format!("cannot write GeoJSON in {crs}: {why}"),
                        ));
                    }
                    self.transformed
                        .insert((layer, true), (geoms.clone(), g.clone()));
                    g
                }
            };
            let system = match crs.shift() {
                Some(crate::crs::Shift::Gcj02) => {
                    "GCJ-02 (not RFC 7946 WGS84: for AMap and Tencent map SDKs)".to_owned()
                }
                Some(crate::crs::Shift::Bd09) => {
                    "BD-09 (not RFC 7946 WGS84: for Baidu map SDKs)".to_owned()
                }
                None => format!("{crs} longitude/latitude (RFC 7946)"),
            };
            let mut foreign = geojson::JsonObject::new();
            foreign.insert("shequ:coordinate_system".into(), json!(system));
            foreign.insert(
                "shequ:provenance".into(),
                provenance(self.build, layer, &t.steps()),
            );
            if let Some(a) = self.table_accuracy(layer, &cols) {
                foreign.insert("shequ:dp_accuracy".into(), a);
            }
            let json_name = format!("{stem}.geojson");
            let features = g.iter().enumerate().map(|(i, g)| {
                let props: geojson::JsonObject = cols
                    .iter()
                    .map(|(k, a)| (k.clone(), json_value(a, i)))
                    .collect();
                (g.as_ref(), props)
            });
            crate::io::geojson::write(
                &self.out.path().join(&json_name),
                features,
                Some(foreign),
                7,
            )?;
            self.written.files.push(json_name);
        }
        let name = format!("{stem}.parquet");
        let geoms = match self.transformed.remove(&(layer, false)) {
            Some((given, done)) if given == geoms => {
                self.transformed
                    .insert((layer, false), (given, done.clone()));
                done
            }
            _ => {
                let given = geoms.clone();
                let mut geoms = geoms;
                let failed = self.to_out.transform_geometries(&mut geoms)?;
                if let Some((i, why)) = failed.first() {
                    return Err(Error::crs(
                        Location::default().file(&name).index(*i),
                        format!("cannot write in {}: {why}", self.output_crs),
                    ));
                }
                self.transformed
                    .insert((layer, false), (given, geoms.clone()));
                geoms
            }
        };
        let mut prov = provenance(self.build, layer, &self.to_out.steps());
        if let Some(a) = self.table_accuracy(layer, &cols) {
            prov["shequ:dp_accuracy"] = a;
        }
        let (schema, batch) = geoparquet::geo_batch(
            &self.out.path().join(&name),
            cols,
            &geoms,
            self.output_crs,
            Some(prov),
        )?;
        self.out.batch(&name, schema, &batch)?;
        self.written.files.push(name);
        Ok(())
    }
}
