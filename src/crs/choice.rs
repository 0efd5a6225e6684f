//! The job's CRS options as types: each is parsed (and checked by PROJ) once, when the job is
//! read, so no later stage parses a string or knows a magic value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Crs;
use crate::error::{Error, Location, Result};

/// `options.working_crs`: the metric CRS every geometry is placed and measured in.
///
/// # Examples
/// ```
/// use shequ::crs::WorkingCrs;
/// assert_eq!("auto".parse::<WorkingCrs>()?, WorkingCrs::Auto);
/// let given: WorkingCrs = "4545".parse()?;
/// assert_eq!(given.to_string(), "EPSG:4545");
/// assert!("garbage".parse::<WorkingCrs>().unwrap_err().to_string().contains("options.working_crs"));
/// # Ok::<(), shequ::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum WorkingCrs {
    /// `auto`: the CGCS2000 3-degree Gauss-Krüger zone nearest the data's centre (a UTM zone
    /// outside China's zones).
    #[default]
    Auto,
    /// An EPSG code or PROJ definition of a projected CRS in metres.
    Given(Crs),
}

/// `options.output_crs`: the CRS of GeoParquet outputs.
///
/// # Examples
/// ```
/// use shequ::crs::OutputCrs;
/// assert_eq!("Working".parse::<OutputCrs>()?, OutputCrs::Working);
/// assert_eq!(OutputCrs::default().to_string(), "EPSG:4326");
/// assert_eq!(OutputCrs::default(), "EPSG:4326".parse()?);
/// # Ok::<(), shequ::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum OutputCrs {
    /// `working`: the working CRS.
    Working,
    /// An EPSG code or PROJ definition (`EPSG:4326` by default).
    Given(Crs),
}

impl Default for OutputCrs {
    fn default() -> Self {
        OutputCrs::Given(epsg_4326())
    }
}

/// `options.geojson_crs`: the CRS of GeoJSON outputs, or none to write no GeoJSON.
///
/// # Examples
/// ```
/// use shequ::crs::GeojsonCrs;
/// assert_eq!("none".parse::<GeojsonCrs>()?, GeojsonCrs::None);
/// assert_eq!("gcj02".parse::<GeojsonCrs>()?.crs().map(|c| c.shift().is_some()), Some(true));
/// # Ok::<(), shequ::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum GeojsonCrs {
    /// `none` (or empty): no GeoJSON is written.
    None,
    /// `EPSG:4326` (RFC 7946, the default), `gcj02` (AMap, Tencent), `bd09` (Baidu) or any
    /// other CRS.
    Given(Crs),
}

impl Default for GeojsonCrs {
    fn default() -> Self {
        GeojsonCrs::Given(epsg_4326())
    }
}

impl WorkingCrs {
    /// The CRS the job names, `None` for `auto`.
    pub fn given(&self) -> Option<&Crs> {
        match self {
            WorkingCrs::Auto => None,
            WorkingCrs::Given(c) => Some(c),
        }
    }
}

impl OutputCrs {
    /// The CRS outputs are written in, given the model's working CRS.
    pub fn resolve<'a>(&'a self, working: &'a Crs) -> &'a Crs {
        match self {
            OutputCrs::Working => working,
            OutputCrs::Given(c) => c,
        }
    }
}

impl GeojsonCrs {
    /// The CRS GeoJSON is written in, `None` when no GeoJSON is written.
    pub fn crs(&self) -> Option<&Crs> {
        match self {
            GeojsonCrs::None => None,
            GeojsonCrs::Given(c) => Some(c),
        }
    }
}

/// The outputs' default CRS as the job text names it (`EPSG:4326`, which PROJ knows; it is
/// not checked again).
fn epsg_4326() -> Crs {
    Crs("EPSG:4326".to_owned())
}

/// Parses the CRS of option `key`; the error message names the key and the value.
fn given(key: &str, text: &str) -> std::result::Result<Crs, String> {
    Crs::parse(text).map_err(|e| {
        let why = match &e {
            Error::Crs { message, .. } => message.clone(),
            other => other.to_string(),
        };
        let value = crate::error::excerpt(text.trim());
        format!("options.{key} = {value:?}: {why}")
    })
}

/// Implements the text forms of one option: parsing (`FromStr`, serde) and display.
macro_rules! text_form {
    ($ty:ident, $key:literal, $word:literal, $unit:ident, $empty_is_word:literal) => {
        impl FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                $ty::try_from(s.to_owned()).map_err(|m| Error::crs(Location::default(), m))
            }
        }

        /// The serde form: the message names the option, so a job's error does too.
        impl TryFrom<String> for $ty {
            type Error = String;
            fn try_from(s: String) -> std::result::Result<Self, String> {
                let t = s.trim();
                if t.eq_ignore_ascii_case($word) || ($empty_is_word && t.is_empty()) {
                    Ok($ty::$unit)
                } else {
                    given($key, t).map($ty::Given)
                }
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.to_string()
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $ty::$unit => f.write_str($word),
                    $ty::Given(c) => f.write_str(c.definition()),
                }
            }
        }
    };
}

text_form!(WorkingCrs, "working_crs", "auto", Auto, false);
text_form!(OutputCrs, "output_crs", "working", Working, false);
text_form!(GeojsonCrs, "geojson_crs", "none", None, true);
