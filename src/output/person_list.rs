//! Person-level lists whose identifiers come from the roster's own rows: a list is made from
//! the model (units, labels, measures) with its identifier columns left empty, and filled
//! from the roster rows of its residents when it is written. One machine fills it from the
//! job's roster file; on Spark the executors fill each file of it from their own roster rows
//! and write it ([`write_part_from`]), so the driver never reads the roster's identifiers.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Location, Result};
use crate::io::table::{Table, read_table};
use crate::job::Job;
use crate::model::level::Layer;
use crate::output::Out;
use crate::output::partition::{Part, clear, parts, write_part};
use crate::privacy::Pseudonymizer;

/// The column of a list's bytes holding each row's roster row.
const ROW: &str = "_shequ_roster_row";
/// The schema metadata key of a list's bytes holding its [`Meta`].
const META: &str = "shequ.person_list";

/// What fills an identifier column, per row, from the resident's roster row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Ident {
    /// The keyed pseudonym of the roster id (`resident_key`).
    Key,
    /// The roster column's text, trimmed (a plain identifier or a roster column asked for).
    Column(String),
}

/// A list's name, layout and identifier columns.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    /// The directory of the list below the output (`coverage/`, or empty).
    dir: String,
    /// The table's name (`residents` for `residents.parquet` or `residents/…`).
    name: String,
    /// Written as Hive partitions by street and community.
    partitioned: bool,
    /// The identifier columns by name, and what fills them.
    idents: Vec<(String, Ident)>,
}

/// A person-level list: its columns, the identifier columns still empty, and each row's
/// roster row (`None` for a row about no resident, whose identifiers stay null).
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir()?;
/// let mut job = shequ::Job::from_toml("data-samples/sample-city/job-grid-worker.toml")?;
/// std::fs::write(dir.path().join("key"), "a grid worker's key 2026")?;
/// job.privacy.as_mut().unwrap().secret_file = Some(dir.path().join("key"));
/// job.output.map = false;
/// let out = dir.path().join("out");
/// let (_, summary, lists) =
///     shequ::run::run_deferring_lists(&job, &out, &shequ::NoProgress, Default::default())?;
/// let files: Vec<String> = lists.iter().map(|l| l.parts().unwrap()[0].0.clone()).collect();
/// assert!(files.contains(&"coverage/residents.parquet".to_string()));
/// // Listed as written, kept for the executors.
/// assert!(files.iter().all(|f| summary.written.files.contains(f) && !out.join(f).exists()));
/// let list = shequ::output::person_list::PersonList::from_bytes(&lists[0].to_bytes()?)?;
/// assert_eq!(list.roster_rows(), lists[0].roster_rows());
/// assert_eq!(list.roster_columns(&job)[0], "居民编号"); // the roster's id column first
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PersonList {
    meta: Meta,
    fields: Vec<Field>,
    cols: Vec<ArrayRef>,
    rows: Vec<Option<u32>>,
}

/// An identifier column before it is filled: empty text in every row.
pub(crate) fn placeholder(n: usize) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(std::iter::repeat_n("", n)))
}

impl PersonList {
    /// The list `name` (in the directory of `out`), with its columns and the roster row of
    /// each row; `idents` name the identifier columns (made with [`placeholder`]).
    pub(crate) fn new(
        out: &Out,
        name: &str,
        partitioned: bool,
        (fields, cols): (Vec<Field>, Vec<ArrayRef>),
        rows: Vec<Option<usize>>,
        idents: Vec<(String, Ident)>,
    ) -> PersonList {
        PersonList {
            meta: Meta {
                dir: out.prefix().to_owned(),
                name: name.to_owned(),
                partitioned: partitioned && !out.is_memory(),
                idents,
            },
            fields,
            cols,
            rows: rows.into_iter().map(|r| r.map(|r| r as u32)).collect(),
        }
    }

    /// The roster columns its identifiers come from (the id column first). See
    /// [`PersonList`] for an example.
    pub fn roster_columns(&self, job: &Job) -> Vec<String> {
        let id = job.layers.residents.as_ref().map(|r| r.id.clone());
        let mut cols: Vec<String> = id.into_iter().collect();
        for (_, ident) in &self.meta.idents {
            if let Ident::Column(c) = ident
                && !cols.contains(c)
            {
                cols.push(c.clone());
            }
        }
        cols
    }

    /// Its files, each with its rows, relative to the output directory. See [`PersonList`]
    /// for an example.
    ///
    /// # Errors
    /// [`Error::Data`] for a partitioned list with no `street_id` or `community_id` column.
    pub fn parts(&self) -> Result<Vec<(String, Vec<u32>)>> {
        let found = parts(
            std::path::Path::new(""),
            &self.meta.name,
            self.meta.partitioned,
            &self.fields,
            &self.cols,
        )?;
        Ok(found
            .into_iter()
            .map(|p| (format!("{}{}", self.meta.dir, p.rel), p.rows))
            .collect())
    }

    /// The roster row of each row of the list (`None`: a row about no resident). See
    /// [`PersonList`] for an example.
    pub fn roster_rows(&self) -> &[Option<u32>] {
        &self.rows
    }

    /// The list as bytes, for the executors that fill it.
    ///
    /// # Errors
    /// [`Error::Parquet`] if the list cannot be encoded.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let at = || Location::default().file(&self.meta.name);
        let perr = |e: &dyn std::fmt::Display| Error::Parquet {
            at: at(),
            message: e.to_string(),
        };
        let meta = serde_json::to_string(&self.meta).map_err(|e| perr(&e))?;
        let mut fields = self.fields.clone();
        fields.push(Field::new(ROW, DataType::UInt32, true));
        let schema = Arc::new(Schema::new(fields).with_metadata([(META.into(), meta)].into()));
        let mut cols = self.cols.clone();
        cols.push(Arc::new(UInt32Array::from(self.rows.clone())));
        let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| perr(&e))?;
        let mut bytes = Vec::new();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, None).map_err(|e| perr(&e))?;
        w.write(&batch).map_err(|e| perr(&e))?;
        w.close().map_err(|e| perr(&e))?;
        Ok(bytes)
    }

    /// A list from [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// [`Error::Parquet`] for bytes that are not a list.
    pub fn from_bytes(bytes: &[u8]) -> Result<PersonList> {
        let perr = |e: &dyn std::fmt::Display| Error::Parquet {
            at: Location::default(),
            message: format!("not a person list: {e}"),
        };
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::copy_from_slice(bytes),
        )
        .map_err(|e| perr(&e))?;
        let schema = builder.schema().clone();
        let reader = builder.build().map_err(|e| perr(&e))?;
        let meta: Meta = schema
            .metadata()
            .get(META)
            .ok_or_else(|| perr(&"no list metadata"))
            .and_then(|m| serde_json::from_str(m).map_err(|e| perr(&e)))?;
        let batches = reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| perr(&e))?;
        let batch =
            arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| perr(&e))?;
        let n = batch.num_columns();
        let rows = batch
            .column(n - 1)
            .as_any()
            .downcast_ref::<UInt32Array>()
            .ok_or_else(|| perr(&"no roster rows"))?;
        Ok(PersonList {
            meta,
            fields: schema.fields()[..n - 1]
                .iter()
                .map(|f| f.as_ref().clone())
                .collect(),
            cols: batch.columns()[..n - 1].to_vec(),
            rows: rows.iter().collect(),
        })
    }

    /// The list with its identifier columns filled from `roster`.
    fn filled(mut self, roster: &RosterText, key: &Pseudonymizer) -> Result<PersonList> {
        let id = roster.id.clone();
        for (name, ident) in &self.meta.idents {
            let Some(i) = self.fields.iter().position(|f| f.name() == name) else {
                continue;
            };
            let column = match ident {
                Ident::Key => &id,
                Ident::Column(c) => c,
            };
            let text = roster.table.text_column(column);
            let nullable = self.fields[i].is_nullable();
            let values: Vec<Option<String>> = self
                .rows
                .iter()
                .map(|r| {
                    let Some(r) = r else { return Ok(None) };
                    let v = text.get(roster.frame_row(*r)?).map(str::trim);
                    Ok(match ident {
                        Ident::Key => Some(key.pseudonym("resident", v.unwrap_or_default())),
                        Ident::Column(_) if nullable => v.map(str::to_owned),
                        Ident::Column(_) => Some(v.unwrap_or_default().to_owned()),
                    })
                })
                .collect::<Result<_>>()?;
            self.cols[i] = Arc::new(StringArray::from(values));
        }
        Ok(self)
    }
}

/// The roster's text columns a list takes, by roster row.
struct RosterText {
    table: Table,
    /// The roster's id column.
    id: String,
    /// (roster row, frame row), by roster row.
    rows: Vec<(u32, u32)>,
}

impl RosterText {
    /// `columns` of the roster rows in `path`: numbered by their place in the file, or by
    /// the column `numbers` when given (an executor's part of the roster).
    fn read(
        job: &Job,
        path: &std::path::Path,
        columns: &[String],
        numbers: Option<&str>,
    ) -> Result<RosterText> {
        let r = super::operational::roster_layer(job)?;
        let mut wanted: Vec<&str> = columns.iter().map(String::as_str).collect();
        wanted.extend(numbers);
        wanted.sort_unstable();
        wanted.dedup();
        let table = read_table(Layer::Resident.name(), path, &wanted, r.encoding)?;
        let mut rows: Vec<(u32, u32)> = match numbers {
            None => (0..table.frame.height())
                .map(|i| (table.source_row(i) as u32, i as u32))
                .collect(),
            Some(c) => {
                let at = |i: usize| Location::layer(Layer::Resident.name()).file(path).index(i);
                crate::io::rows::row_column(&table, c, &at)?
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, r)| r.map(|r| (r, i as u32)))
                    .collect()
            }
        };
        rows.sort_unstable();
        Ok(RosterText {
            table,
            id: r.id.clone(),
            rows,
        })
    }

    /// The frame row of roster row `r`.
    fn frame_row(&self, r: u32) -> Result<usize> {
        self.rows
            .binary_search_by_key(&r, |x| x.0)
            .map(|k| self.rows[k].1 as usize)
            .map_err(|_| {
                Error::data(
                    Location::layer(Layer::Resident.name())
                        .file(&self.table.path)
                        .index(r as usize),
                    "a person list names a roster row that is not in the roster given",
                )
            })
    }
}

/// Writes `list` into `out`, or keeps it there for the executors when `out` defers person
/// lists ([`Out::deferring_lists`]). Returns its files, each after `prefix`.
///
/// # Errors
/// Read errors of the roster; [`Error::Data`] for a roster row not in it; write errors.
pub(crate) fn write(
    out: &Out,
    prefix: &str,
    job: &Job,
    key: &Pseudonymizer,
    list: PersonList,
) -> Result<Vec<String>> {
    // The files follow the unit columns, which are not identifiers: filling keeps them.
    let found = parts(
        out.path(),
        &list.meta.name,
        list.meta.partitioned,
        &list.fields,
        &list.cols,
    )?;
    let files: Vec<String> = found.iter().map(|p| format!("{prefix}{}", p.rel)).collect();
    clear(out, &list.meta.name, list.meta.partitioned)?;
    let Some(list) = out.defer(list) else {
        return Ok(files);
    };
    let path = job.resolve(&super::operational::roster_layer(job)?.path);
    let roster = RosterText::read(job, &path, &list.roster_columns(job), None)?;
    let list = list.filled(&roster, key)?;
    let m = &list.meta;
    for part in &found {
        write_part(out, &m.name, m.partitioned, &list.fields, &list.cols, part)?;
    }
    Ok(files)
}

/// Writes file `part` of `list` (an index into [`PersonList::parts`]) under the output
/// directory `out`, its identifiers filled from the roster rows in `roster` (a file of the
/// roster's columns, each row's roster row in the column `numbers`): what an executor does
/// with the rows of the roster Spark brought to it. Returns the file written.
///
/// # Errors
/// [`Error::Data`] for a part not in the list or a row of it whose roster row is missing;
/// read errors of `roster`; write errors.
///
/// # Examples
/// ```
/// use shequ::output::person_list::write_part_from;
/// let dir = tempfile::tempdir()?;
/// let city = std::path::Path::new("data-samples/sample-city");
/// let mut job = shequ::Job::from_toml(city.join("job-grid-worker.toml"))?;
/// std::fs::write(dir.path().join("key"), "a grid worker's key 2026")?;
/// job.privacy.as_mut().unwrap().secret_file = Some(dir.path().join("key"));
/// job.output.map = false;
/// let out = dir.path().join("out");
/// let (_, _, lists) =
///     shequ::run::run_deferring_lists(&job, &out, &shequ::NoProgress, Default::default())?;
/// let residents = lists.into_iter().find(|l| l.parts().unwrap()[0].0 == "residents.parquet");
/// // The roster with each row's number in `_row`: the rows an executor would hold.
/// let bytes = std::fs::read(city.join("residents.csv"))?;
/// let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
/// let mut lines = text.lines();
/// let mut roster = format!("{},_row\n", lines.next().unwrap());
/// for (r, line) in lines.enumerate() {
///     roster.push_str(&format!("{line},{r}\n"));
/// }
/// let rows = dir.path().join("rows.csv");
/// std::fs::write(&rows, encoding_rs::GB18030.encode(&roster).0)?;
/// let policy = shequ::run::policy(&job)?;
/// let key = shequ::output::operational::key(&policy)?;
/// let file = write_part_from(&job, key, residents.unwrap(), 0, &rows, "_row", &out)?;
/// assert_eq!(file, "residents.parquet");
/// assert!(out.join(file).exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_part_from(
    job: &Job,
    key: &Pseudonymizer,
    list: PersonList,
    part: usize,
    roster: &std::path::Path,
    numbers: &str,
    out: &std::path::Path,
) -> Result<String> {
    let dir = Out::dir(out.join(&list.meta.dir));
    let m = list.meta.clone();
    let all = parts(dir.path(), &m.name, m.partitioned, &list.fields, &list.cols)?;
    let Part { rel, rows } = all.into_iter().nth(part).ok_or_else(|| {
        Error::data(
            Location::default().file(out),
            format!("{}: no file {part} in this list", m.name),
        )
    })?;
    let idx = UInt32Array::from(rows.clone());
    let take = |c: &ArrayRef| arrow_select::take::take(c.as_ref(), &idx, None);
    let cols = list
        .cols
        .iter()
        .map(take)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Parquet {
            at: Location::default().file(out.join(&rel)),
            message: e.to_string(),
        })?;
    let own = PersonList {
        rows: rows.iter().map(|&r| list.rows[r as usize]).collect(),
        fields: list.fields,
        cols,
        meta: m.clone(),
    };
    let text = RosterText::read(job, roster, &own.roster_columns(job), Some(numbers))?;
    let own = own.filled(&text, key)?;
    let every = (0..own.rows.len() as u32).collect();
    let whole = Part {
        rel: rel.clone(),
        rows: every,
    };
    write_part(&dir, &m.name, m.partitioned, &own.fields, &own.cols, &whole)?;
    dir.finish()?;
    Ok(format!("{}{rel}", m.dir))
}
