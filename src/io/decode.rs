//! Reading a text file as UTF-8 a block at a time: one pass that checks whether the bytes are
//! UTF-8 and counts the line breaks (the row capacity of the column builders), then a reader
//! that hands the CSV parser UTF-8 decoded on the fly (GB18030 with `encoding_rs`), so no
//! copy of the whole file is held, raw or decoded.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;

use super::rows::Encoding;

/// Bytes read per block.
const BLOCK: usize = 1 << 20;
/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What the first pass over a file found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scan {
    /// `\n` bytes, or lone `\r` bytes where there is no `\n` (GB18030 never uses either
    /// byte inside a character, so raw bytes count lines in both encodings).
    pub(crate) line_breaks: usize,
    /// `None` if the file (after a byte-order mark) is valid UTF-8; else the byte offset of
    /// the first invalid sequence (after the mark) and its line.
    pub(crate) not_utf8: Option<(usize, usize)>,
}

/// Reads the file once, a block at a time: line breaks counted, UTF-8 checked.
pub(crate) fn scan(path: &Path) -> io::Result<Scan> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; BLOCK];
    let (mut lf, mut cr) = (0usize, 0usize);
    // Bytes of an incomplete character carried from the end of the last block.
    let mut carry: Vec<u8> = Vec::with_capacity(4);
    let mut offset = 0usize; // offset (in the whole file) of carry[0]
    let mut first = true;
    let mut bad: Option<usize> = None;
    let mut bom = 0usize;
    loop {
        let n = read_full(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        let block = &buf[..n];
        let block_lf = block.iter().filter(|&&b| b == b'\n').count();
        cr += block.iter().filter(|&&b| b == b'\r').count();
        if bad.is_none() {
            let mut bytes = std::mem::take(&mut carry);
            bytes.extend_from_slice(block);
            let mut start = 0;
            if first && bytes.starts_with(BOM) {
                start = BOM.len();
                bom = BOM.len();
            }
            first = false;
            match std::str::from_utf8(&bytes[start..]) {
                Ok(_) => offset += bytes.len(),
                Err(e) => {
                    let upto = start + e.valid_up_to();
                    if e.error_len().is_some() || n < BLOCK {
                        bad = Some(offset + upto);
                    } else {
                        carry = bytes[upto..].to_vec();
                        offset += upto;
                    }
                }
            }
        }
        lf += block_lf;
        if n < BLOCK {
            break;
        }
    }
    if bad.is_none() && !carry.is_empty() {
        bad = Some(offset);
    }
    let not_utf8 = match bad {
        None => None,
        Some(at) => Some((at - bom, line_at(path, at - bom)?)),
    };
    Ok(Scan {
        line_breaks: if lf == 0 { cr } else { lf },
        not_utf8,
    })
}

/// The line of a byte offset: the `\n` bytes among the first `upto` bytes of the file, plus
/// one (read again, only when a file is not UTF-8).
fn line_at(path: &Path, upto: usize) -> io::Result<usize> {
    let mut file = File::open(path)?.take(upto as u64);
    let mut buf = vec![0u8; BLOCK];
    let mut lines = 0;
    loop {
        let n = read_full(&mut file, &mut buf)?;
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
        if n < BLOCK {
            return Ok(lines + 1);
        }
    }
}

/// Fills `buf` as far as the file allows; the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A file's text as UTF-8, decoded as it is read.
pub(crate) enum Decoded {
    /// UTF-8 already (a byte-order mark skipped).
    Utf8(BufReader<File>),
    /// GB18030 (also GBK and GB2312), decoded with `encoding_rs`.
    Gb18030(Box<Gb18030Reader>),
}

/// Opens a file for reading as text in `encoding` (`Auto`: UTF-8 if `scan` found it valid,
/// else GB18030).
///
/// # Errors
/// The message of an invalid UTF-8 file in `Utf8`, as [`read_table`](super::table::read_table)
/// reports it; I/O errors as `Err(Ok(e))`.
pub(crate) fn open(
    path: &Path,
    encoding: Encoding,
    scan: &Scan,
) -> std::result::Result<Decoded, Result<io::Error, String>> {
    let utf8 = match (encoding, scan.not_utf8) {
        (Encoding::Utf8, Some((byte, line))) => {
            return Err(Err(format!(
                "not valid UTF-8 at line {line} (byte {byte}); if the file is GBK/GB18030 set encoding = \"gb18030\""
            )));
        }
        (Encoding::Utf8, None) => true,
        (Encoding::Auto, None) => true,
        (Encoding::Auto, Some(_)) | (Encoding::Gb18030, _) => false,
    };
    let mut file = BufReader::with_capacity(BLOCK, File::open(path).map_err(Ok)?);
    if utf8 {
        let mut head = [0u8; 3];
        let n = read_full(&mut file, &mut head).map_err(Ok)?;
        if head[..n] != *BOM {
            // No mark: start again from the beginning.
            file.seek(io::SeekFrom::Start(0)).map_err(Ok)?;
        }
        return Ok(Decoded::Utf8(file));
    }
    Ok(Decoded::Gb18030(Box::new(Gb18030Reader {
        file,
        decoder: encoding_rs::GB18030.new_decoder_without_bom_handling(),
        input: vec![0; BLOCK],
        output: String::with_capacity(BLOCK * 3 / 2 + 16),
        pos: 0,
        lines: 0,
        done: false,
    })))
}

impl Read for Decoded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoded::Utf8(r) => r.read(buf),
            Decoded::Gb18030(r) => r.read(buf),
        }
    }
}

/// GB18030 bytes in, UTF-8 out, a block at a time. A malformed sequence is an error naming
/// its line.
pub(crate) struct Gb18030Reader {
    file: BufReader<File>,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    /// The decoded block being handed out, from `pos`.
    output: String,
    pos: usize,
    /// Lines decoded before `output`.
    lines: usize,
    done: bool,
}

impl Gb18030Reader {
    /// Decodes the next block into `output`; false at the end of the file.
    fn refill(&mut self) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        self.lines += self.output.matches('\n').count();
        self.output.clear();
        self.pos = 0;
        let n = read_full(&mut self.file, &mut self.input)?;
        let last = n < self.input.len();
        let room = self.decoder.max_utf8_buffer_length(n).unwrap_or(n * 3 + 16);
        self.output.reserve(room);
        let (_, read, had_errors) =
            self.decoder
                .decode_to_string(&self.input[..n], &mut self.output, last);
        if read < n {
            return Err(io::Error::other("GB18030 decoder stopped early"));
        }
        if had_errors {
            let at = self.output.find('\u{FFFD}').unwrap_or(0);
            let line = self.lines + self.output[..at].matches('\n').count() + 1;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not valid GB18030 text at line {line}"),
            ));
        }
        self.done = last;
        Ok(!self.output.is_empty() || !last)
    }
}

impl Read for Gb18030Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.output.len() {
            if !self.refill()? {
                return Ok(0);
            }
        }
        let bytes = &self.output.as_bytes()[self.pos..];
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::io::table::{Encoding, read_table};

    /// Rows of `id,name` with names of 1–4 Chinese characters, enough to pass several blocks,
    /// so characters straddle the blocks' ends.
    fn rows(n: usize) -> (String, Vec<String>) {
        let chars = ["社", "区", "网格", "楼栋居民", "户"];
        let mut text = String::from("id,name\n");
        let mut names = Vec::new();
        for i in 0..n {
            let name: String = (0..=i % 3).map(|k| chars[(i + k) % chars.len()]).collect();
            text.push_str(&format!("R{i:07},{name}\n"));
            names.push(name);
        }
        (text, names)
    }

    fn names(path: &std::path::Path, encoding: Encoding) -> crate::Result<Vec<String>> {
        let t = read_table("residents", path, &["id", "name"], encoding)?;
        let c = t.text_column("name");
        Ok((0..c.len())
            .map(|i| c.get(i).unwrap_or_default().to_owned())
            .collect())
    }

    #[test]
    fn text_across_blocks_reads_as_a_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (text, expected) = rows(250_000);
        let gb = dir.path().join("gb.csv");
        std::fs::write(&gb, encoding_rs::GB18030.encode(&text).0).expect("write");
        assert!(std::fs::metadata(&gb).expect("size").len() > 2 * super::BLOCK as u64);
        assert_eq!(names(&gb, Encoding::Gb18030).expect("gb18030"), expected);
        assert_eq!(names(&gb, Encoding::Auto).expect("auto"), expected);
        let utf8 = dir.path().join("utf8.csv");
        std::fs::write(&utf8, [super::BOM, text.as_bytes()].concat()).expect("write");
        assert_eq!(names(&utf8, Encoding::Utf8).expect("utf-8"), expected);
        assert_eq!(names(&utf8, Encoding::Auto).expect("auto"), expected);
    }

    #[test]
    fn a_bad_byte_after_the_first_block_names_its_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (text, _) = rows(120_000);
        let line = 100_001; // a data row past the first block
        let at: usize = text
            .split_inclusive('\n')
            .take(line - 1)
            .map(str::len)
            .sum();
        let mut bytes = text.clone().into_bytes();
        bytes[at + 3] = 0xFF; // inside the id: not UTF-8, not GB18030
        let p = dir.path().join("bad.csv");
        std::fs::write(&p, &bytes).expect("write");
        let e = names(&p, Encoding::Utf8)
            .expect_err("not UTF-8")
            .to_string();
        assert!(e.contains(&format!("line {line} (byte {})", at + 3)), "{e}");
        let mut gb = encoding_rs::GB18030.encode(&text).0.into_owned();
        let gb_at: usize = encoding_rs::GB18030
            .encode(
                &text
                    .split_inclusive('\n')
                    .take(line - 1)
                    .collect::<String>(),
            )
            .0
            .len();
        gb[gb_at + 3] = 0xFF;
        std::fs::write(&p, &gb).expect("write");
        for enc in [Encoding::Gb18030, Encoding::Auto] {
            let e = names(&p, enc).expect_err("not GB18030").to_string();
            assert!(
                e.contains(&format!("not valid GB18030 text at line {line}")),
                "{e}"
            );
        }
    }
}
