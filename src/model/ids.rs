//! Typed identifiers. Codes are strings: leading zeros matter (`"500103001001"`).

use std::fmt;
use std::sync::Arc;

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a code. The code is kept byte for byte (no trimming, no number parsing).
            pub fn new(code: impl AsRef<str>) -> Self {
                $name(Arc::from(code.as_ref()))
            }
            /// The code as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

define_id!(
    /// Code of a street (街道, also 镇/乡): in national statistical codes the first 9 digits.
    ///
    /// # Examples
    /// ```
    /// let s = shequ::StreetId::new("500103001");
    /// assert_eq!(s.as_str(), "500103001");
    /// ```
    StreetId
);
define_id!(
    /// Code of a community (社区, residents' committee area): 12 digits in national codes.
    ///
    /// # Examples
    /// ```
    /// let c = shequ::CommunityId::new("500103001001");
    /// assert!(c.as_str().starts_with("500103001"));
    /// ```
    CommunityId
);
define_id!(
    /// Code of a grid (网格), the unit of one grid worker.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shequ::GridId::new("0007").to_string(), "0007");
    /// ```
    GridId
);
define_id!(
    /// Code of a building (楼栋).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shequ::BuildingId::from("B-01").as_str(), "B-01");
    /// ```
    BuildingId
);
define_id!(
    /// Code of a household (户).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shequ::HouseholdId::new("H000123").as_str(), "H000123");
    /// ```
    HouseholdId
);
define_id!(
    /// Code of a facility (clinic, day-care centre, ...).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(shequ::FacilityId::new("F01").as_str(), "F01");
    /// ```
    FacilityId
);
