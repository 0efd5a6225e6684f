//! Privacy by default: keyed pseudonyms, ID-number checks, masking, the two output kinds and
//! small-cell suppression. See `docs/privacy.md` for the model and its limits.
//!
//! * [`OutputKind`] — every run is either `research` (aggregates only, safe to publish) or
//!   `operational` (named lists for the grid workers of one grid or community).
//! * [`Secret`], [`Pseudonymizer`] — keyed pseudonyms (HMAC-SHA-256) for resident and household
//!   ids; the secret comes from an environment variable or a file and is never written out.
//! * [`check_id_number`] — GB 11643 citizen ID numbers (18 characters, ISO 7064 MOD 11-2
//!   check digit, valid birth date).
//! * [`mask_identifier`] — what quality reports and messages show instead of an identifier.
//! * [`suppress`] — small-cell and complementary suppression across levels and categories.

pub mod dp;
mod id_number;
pub mod optimal;
pub mod suppress;

pub use id_number::{
    CitizenId, IdNumber, IdNumberProblem, LinkId, check_id_number, id_check_char, link_id_number,
};
pub(crate) use id_number::{id_number_birth, id_number_is_male};

use std::fmt;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{Error, Result};

/// The two kinds of output a run can write; the job must choose one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// Aggregates only, with small counts suppressed: safe to publish. No person-level rows,
    /// no household points; the finest geometry is the building (or the grid).
    Research,
    /// For a community's own grid workers: named lists limited to one grid or community, with
    /// pseudonymised ids unless plain identifiers are explicitly requested.
    Operational,
    /// Aggregates only, every count published with noise under a differential privacy budget
    /// (`[privacy.dp]`): non-negative integers that add up across levels.
    #[serde(rename = "research-dp")]
    ResearchDp,
}

impl OutputKind {
    /// `research` or `operational`.
    pub fn code(self) -> &'static str {
        match self {
            OutputKind::Research => "research",
            OutputKind::Operational => "operational",
            OutputKind::ResearchDp => "research-dp",
        }
    }

    /// Whether the output holds aggregates only (`research` or `research-dp`).
    ///
    /// # Examples
    /// ```
    /// use shequ::privacy::OutputKind;
    /// assert!(OutputKind::ResearchDp.is_aggregate() && !OutputKind::Operational.is_aggregate());
    /// ```
    pub fn is_aggregate(self) -> bool {
        matches!(self, OutputKind::Research | OutputKind::ResearchDp)
    }
}

/// How sensitive a published count is; it decides the count's primary suppression rule in a
/// research release (see `docs/privacy.md`).
///
/// # Examples
/// ```
/// use shequ::privacy::Sensitivity;
/// assert_eq!(Sensitivity::default(), Sensitivity::Sensitive);
/// assert_eq!(Sensitivity::Low.max(Sensitivity::Sensitive), Sensitivity::Sensitive);
/// assert_eq!(Sensitivity::Low.code(), "low");
/// ```
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Counts of people and households by place, by sex and by age, and coverage of all
    /// residents: what a census publishes. Published as they are (or below the job's `k_low`).
    Low,
    /// Special-needs categories (health, disability, income, minors: PIPL's sensitive personal
    /// information, and other vulnerabilities): counts below `k` are hidden, and so is a count
    /// whose difference to a sensitive count it lies in is below `k`. The default for
    /// categories a job defines.
    #[default]
    Sensitive,
}

impl Sensitivity {
    /// `low` or `sensitive`.
    pub fn code(self) -> &'static str {
        match self {
            Sensitivity::Low => "low",
            Sensitivity::Sensitive => "sensitive",
        }
    }
}

/// The finest level research outputs go down to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finest {
    /// Counts per building (the default).
    #[default]
    Building,
    /// Counts per grid; no building-level counts are written.
    Grid,
}

/// The key for pseudonyms. Its bytes are never printed or written; [`Secret::fingerprint`]
/// identifies it in manifests.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.fingerprint())
    }
}

/// The fewest bytes a secret may have.
pub const MIN_SECRET_BYTES: usize = 16;

impl Secret {
    /// A secret from bytes (surrounding whitespace is ignored).
    ///
    /// # Errors
    /// [`Error::Privacy`] if shorter than [`MIN_SECRET_BYTES`].
    ///
    /// # Examples
    /// ```
    /// use shequ::privacy::Secret;
    /// assert!(Secret::from_bytes(b"short").is_err());
    /// assert!(Secret::from_bytes(b"a long enough secret for tests").is_ok());
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Secret> {
        let trimmed = bytes.trim_ascii();
        if trimmed.len() < MIN_SECRET_BYTES {
            return Err(Error::Privacy {
                message: format!(
                    "the pseudonym secret must have at least {MIN_SECRET_BYTES} bytes"
                ),
            });
        }
        Ok(Secret(trimmed.to_vec()))
    }

    /// The secret in environment variable `var`.
    ///
    /// # Errors
    /// [`Error::Privacy`] if unset or too short.
    pub fn from_env(var: &str) -> Result<Secret> {
        let v = std::env::var_os(var).ok_or_else(|| Error::Privacy {
            message: format!(
                "no pseudonym secret: set environment variable {var} (at least \
                 {MIN_SECRET_BYTES} bytes) or privacy.secret_file in the job"
            ),
        })?;
        Self::from_bytes(v.as_encoded_bytes()).map_err(|e| Error::Privacy {
            message: format!("environment variable {var}: {e}"),
        })
    }

    /// The secret in a file (whitespace around it is ignored).
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable, [`Error::Privacy`] if too short.
    pub fn from_file(path: &Path) -> Result<Secret> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes).map_err(|e| Error::Privacy {
            message: format!("{}: {e}", path.display()),
        })
    }

    /// The key's bytes, for keyed derivations inside the crate.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// A short public fingerprint of the key (HMAC of a fixed label), for manifests: runs with
    /// the same fingerprint produce the same pseudonyms.
    ///
    /// # Panics
    /// Never: HMAC takes keys of any length.
    pub fn fingerprint(&self) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(b"shequ key fingerprint");
        hex::encode(&mac.finalize().into_bytes()[..8])
    }
}

/// Replaces identifiers by keyed pseudonyms: HMAC-SHA-256 of the identifier under the secret,
/// separated by kind (`resident`, `household`), truncated to 96 bits and hex encoded.
///
/// Stable across runs with one secret; unrelated under another. Without the secret a
/// pseudonym cannot be recomputed from a guessed identifier (unlike a plain hash, which can be
/// reversed by hashing every possible ID number).
///
/// # Examples
/// ```
/// use shequ::privacy::{Pseudonymizer, Secret};
/// let a = Pseudonymizer::new(&Secret::from_bytes(b"first secret, 16+ bytes")?);
/// let b = Pseudonymizer::new(&Secret::from_bytes(b"second secret, 16+ bytes")?);
/// let p = a.pseudonym("resident", "R00000001");
/// assert_eq!(p, a.pseudonym("resident", "R00000001"));
/// assert_ne!(p, b.pseudonym("resident", "R00000001"));
/// assert_ne!(p, a.pseudonym("household", "R00000001"));
/// assert_eq!(p.len(), 24);
/// # Ok::<(), shequ::Error>(())
/// ```
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pseudonymizer(..)")
    }
}

impl Pseudonymizer {
    /// A pseudonymizer keyed with `secret`.
    ///
    /// # Panics
    /// Never: HMAC takes keys of any length.
    pub fn new(secret: &Secret) -> Pseudonymizer {
        Pseudonymizer {
            mac: <Hmac<Sha256> as KeyInit>::new_from_slice(&secret.0)
                .expect("HMAC takes keys of any length"),
        }
    }

    /// The pseudonym of `id` of the given kind.
    pub fn pseudonym(&self, kind: &str, id: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..12])
    }
}

/// Masks an identifier for logs and reports: the first two and last two characters are kept,
/// the rest replaced by `*`; identifiers of four characters or fewer are fully masked.
///
/// # Examples
/// ```
/// assert_eq!(shequ::privacy::mask_identifier("500103195603121234"), "50**************34");
/// assert_eq!(shequ::privacy::mask_identifier("P12"), "***");
/// ```
pub fn mask_identifier(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    let n = chars.len();
    if n <= 4 {
        return "*".repeat(n);
    }
    let mut s = String::with_capacity(id.len());
    s.extend(&chars[..2]);
    s.extend(std::iter::repeat_n('*', n - 4));
    s.extend(&chars[n - 2..]);
    s
}

/// Refuses person-level output under a research policy.
///
/// # Errors
/// [`Error::Privacy`] if `kind` is an aggregate kind ([`OutputKind::is_aggregate`]).
///
/// # Examples
/// ```
/// use shequ::privacy::{require_operational, OutputKind};
/// assert!(require_operational(OutputKind::Research, "residents.parquet").is_err());
/// assert!(require_operational(OutputKind::Operational, "residents.parquet").is_ok());
/// ```
pub fn require_operational(kind: OutputKind, what: &str) -> Result<()> {
    match kind {
        OutputKind::Operational => Ok(()),
        OutputKind::Research | OutputKind::ResearchDp => Err(Error::Privacy {
            message: format!("{what} has person-level rows; a research run writes aggregates only"),
        }),
    }
}

/// A run's privacy policy, resolved from the job's `[privacy]` section: the output kind, its
/// parameters and (for operational runs) the pseudonym key.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Research or operational.
    pub kind: OutputKind,
    /// Research: suppression threshold of sensitive counts.
    pub k: u64,
    /// Research: suppression threshold of low-sensitivity counts (0: all published).
    pub k_low: u64,
    /// Research: whether zero counts below the threshold are hidden too.
    pub suppress_zeros: bool,
    /// Research: how complementary cells are chosen.
    pub complementary: suppress::Method,
    /// Research-dp: the budget, its split and the noise key.
    pub dp: Option<dp::Plan>,
    /// Research: finest level.
    pub finest: Finest,
    /// Operational: the pseudonym key (research runs write no pseudonyms).
    pub pseudonyms: Option<Pseudonymizer>,
    /// Operational and research-dp: the fingerprint of the key.
    pub key_fingerprint: Option<String>,
    /// Operational: the level (grid or community) and code named lists are limited to.
    pub scope: Option<(crate::Layer, String)>,
    /// Operational: plain identifiers requested.
    pub plain_identifiers: bool,
    /// Operational: restricted-tier columns allowed.
    pub allow_restricted: bool,
}

impl Policy {
    /// The research policy with threshold `k`, finest level building.
    ///
    /// # Examples
    /// ```
    /// let p = shequ::privacy::Policy::research(5);
    /// assert_eq!(p.kind, shequ::privacy::OutputKind::Research);
    /// assert!(p.pseudonyms.is_none());
    /// ```
    pub fn research(k: u64) -> Policy {
        Policy {
            kind: OutputKind::Research,
            k,
            k_low: 0,
            suppress_zeros: false,
            complementary: suppress::Method::Optimal,
            dp: None,
            finest: Finest::Building,
            pseudonyms: None,
            key_fingerprint: None,
            scope: None,
            plain_identifiers: false,
            allow_restricted: false,
        }
    }

    /// The primary suppression rule of counts of a class under this policy: `k` for
    /// sensitive counts, `k_low` for low ones; zeros are safe unless `suppress_zeros`.
    ///
    /// # Examples
    /// ```
    /// use shequ::privacy::{Policy, Sensitivity};
    /// let p = Policy::research(5);
    /// assert!(p.threshold(Sensitivity::Sensitive).is_unsafe(3));
    /// assert!(!p.threshold(Sensitivity::Sensitive).is_unsafe(0));
    /// assert!(!p.threshold(Sensitivity::Low).is_unsafe(1));
    /// ```
    pub fn threshold(&self, class: Sensitivity) -> suppress::Threshold {
        suppress::Threshold {
            k: match class {
                Sensitivity::Low => self.k_low,
                Sensitivity::Sensitive => self.k,
            },
            zeros_unsafe: self.suppress_zeros,
        }
    }

    /// Resolves a job's `[privacy]` section, reading the secret for operational runs from
    /// `secret_file` (relative to `base_dir`) or the environment variable `secret_env`.
    ///
    /// # Errors
    /// [`Error::Privacy`] for a missing or short secret, [`Error::Io`] for an unreadable
    /// secret file.
    ///
    /// # Examples
    /// ```
    /// use shequ::{privacy::Policy, PrivacyOptions};
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("key"), "a secret of at least sixteen bytes\n")?;
    /// let mut o = PrivacyOptions::operational_grid("G1");
    /// o.secret_file = Some("key".into());
    /// let p = Policy::resolve(&o, dir.path())?;
    /// assert!(p.pseudonyms.is_some());
    /// assert_eq!(p.scope, Some((shequ::Layer::Grid, "G1".to_string())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolve(o: &crate::PrivacyOptions, base_dir: &Path) -> Result<Policy> {
        let mut p = Policy {
            kind: o.output,
            k: o.k,
            k_low: o.k_low,
            suppress_zeros: o.suppress_zeros,
            complementary: o.complementary,
            finest: o.finest,
            ..Policy::research(o.k)
        };
        let secret = || match &o.secret_file {
            Some(f) if f.is_absolute() => Secret::from_file(f),
            Some(f) => Secret::from_file(&base_dir.join(f)),
            None => Secret::from_env(&o.secret_env),
        };
        if o.output == OutputKind::ResearchDp {
            let secret = secret()?;
            p.key_fingerprint = Some(secret.fingerprint());
            p.dp = Some(dp::Plan::new(o.dp.clone().unwrap_or_default(), &secret)?);
        }
        if o.output == OutputKind::Operational {
            let secret = secret()?;
            p.key_fingerprint = Some(secret.fingerprint());
            p.pseudonyms = Some(Pseudonymizer::new(&secret));
            p.scope = match (&o.grid, &o.community, &o.street) {
                (Some(g), None, None) => Some((crate::Layer::Grid, g.clone())),
                (None, Some(c), None) => Some((crate::Layer::Community, c.clone())),
                (None, None, Some(s)) => Some((crate::Layer::Street, s.clone())),
                _ => {
                    return Err(Error::Privacy {
                        message: "an operational run needs exactly one of privacy.grid, \
                                  privacy.community or privacy.street"
                            .into(),
                    });
                }
            };
            p.plain_identifiers = o.plain_identifiers;
            p.allow_restricted = o.allow_restricted;
        }
        Ok(p)
    }
}
