//! The record format of an output file, and reading it. A record is a header — `seq` (i64), the
//! text's length (u32), a CRC-32 of everything else in the record (u32), the stream name's length
//! (u8) — then the stream name and the text. A reader stops at the first record that is
//! incomplete or fails its check: it is still being written, or a crash tore it.
//!
//! Beside each log, an index file holds `(seq, offset)` pairs (two little-endian u64) of a record
//! every so often, so that reading after a sequence number starts near its place.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use crate::store::OutputChunk;

/// Fixed part of a record's header.
pub(super) const HEADER: usize = 8 + 4 + 4 + 1;
/// Longer texts are never written (chunks are far smaller); a longer length is a torn header.
const MAX_TEXT: u32 = 64 << 20;
/// One pair of the index file.
pub(super) const INDEX_ENTRY: u64 = 16;

/// The index of a log: `(seq, offset)` of a record every so often, in order.
pub(super) type Index = Vec<(i64, u64)>;

fn checksum(seq: i64, stream: &[u8], text: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(&(text.len() as u32).to_le_bytes());
    crc.update(stream);
    crc.update(text);
    crc.finalize()
}

/// Appends the header and stream name of `chunk` to `out`; the text follows it in the file.
pub(super) fn encode_header(chunk: &OutputChunk, out: &mut Vec<u8>) -> io::Result<()> {
    let stream = chunk.stream.as_bytes();
    let stream_len = u8::try_from(stream.len()).map_err(|_| invalid("stream name longer than 255 bytes"))?;
    let text_len = u32::try_from(chunk.text.len())
        .ok()
        .filter(|n| *n <= MAX_TEXT)
        .ok_or_else(|| invalid("output chunk too large"))?;
    out.extend_from_slice(&chunk.seq.to_le_bytes());
    out.extend_from_slice(&text_len.to_le_bytes());
    out.extend_from_slice(&checksum(chunk.seq, stream, chunk.text.as_bytes()).to_le_bytes());
    out.push(stream_len);
    out.extend_from_slice(stream);
    Ok(())
}

pub(super) fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// A record's header, as read.
struct Header {
    seq: i64,
    text_len: u32,
    crc: u32,
    stream_len: u8,
}

impl Header {
    fn parse(bytes: &[u8; HEADER]) -> Option<Self> {
        let header = Self {
            seq: i64::from_le_bytes(bytes[0..8].try_into().ok()?),
            text_len: u32::from_le_bytes(bytes[8..12].try_into().ok()?),
            crc: u32::from_le_bytes(bytes[12..16].try_into().ok()?),
            stream_len: bytes[16],
        };
        (header.seq > 0 && header.text_len <= MAX_TEXT).then_some(header)
    }

    fn record_len(&self) -> u64 {
        HEADER as u64 + u64::from(self.stream_len) + u64::from(self.text_len)
    }
}

/// Reads records from an offset on, stopping quietly at the first incomplete or torn one.
pub(super) struct Records {
    reader: BufReader<File>,
    offset: u64,
}

impl Records {
    pub(super) fn at(file: File, offset: u64) -> io::Result<Self> {
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        reader.seek(SeekFrom::Start(offset))?;
        Ok(Self { reader, offset })
    }

    /// Offset of the next record.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    fn header(&mut self) -> io::Result<Option<Header>> {
        let mut bytes = [0u8; HEADER];
        match self.reader.read_exact(&mut bytes) {
            Ok(()) => Ok(Header::parse(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The next record, checked; `None` at the end of what is complete.
    pub(super) fn next_chunk(&mut self, command_id: &str) -> io::Result<Option<OutputChunk>> {
        let Some(header) = self.header()? else { return Ok(None) };
        let mut stream = vec![0u8; usize::from(header.stream_len)];
        let mut text = vec![0u8; header.text_len as usize];
        for part in [&mut stream, &mut text] {
            match self.reader.read_exact(part) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        if checksum(header.seq, &stream, &text) != header.crc {
            return Ok(None);
        }
        let (Ok(stream), Ok(text)) = (String::from_utf8(stream), String::from_utf8(text)) else {
            return Ok(None);
        };
        self.offset += header.record_len();
        Ok(Some(OutputChunk {
            command_id: command_id.to_owned(),
            seq: header.seq,
            stream,
            text,
        }))
    }

    /// Steps over the next record without reading its text: its sequence number, `None` at the end.
    pub(super) fn skip(&mut self) -> io::Result<Option<i64>> {
        let Some(header) = self.header()? else { return Ok(None) };
        let rest = header.record_len() - HEADER as u64;
        let len = self.reader.get_ref().metadata()?.len();
        if self.offset + header.record_len() > len {
            return Ok(None);
        }
        self.reader.seek_relative(rest as i64)?;
        self.offset += header.record_len();
        Ok(Some(header.seq))
    }
}

/// The sequence number of the record at `offset`, if one starts there.
fn seq_at(file: &File, offset: u64) -> Option<i64> {
    let mut bytes = [0u8; HEADER];
    file.read_exact_at(&mut bytes, offset).ok()?;
    Header::parse(&bytes).map(|h| h.seq)
}

/// Reads the index pairs; a torn last pair is left out.
pub(super) fn read_index(index: &File) -> io::Result<Index> {
    let mut bytes = Vec::new();
    (&*index).read_to_end(&mut bytes)?;
    Ok(bytes
        .chunks_exact(INDEX_ENTRY as usize)
        .map(|pair| {
            let (seq, offset) = pair.split_at(8);
            (
                i64::from_le_bytes(seq.try_into().unwrap_or_default()),
                u64::from_le_bytes(offset.try_into().unwrap_or_default()),
            )
        })
        .collect())
}

/// Where to start reading for the records after `after`: the last indexed record at or before
/// `after + 1` that really is where the index says; the start of the file otherwise.
pub(super) fn start_for(log: &File, index: &[(i64, u64)], after: i64) -> u64 {
    let at = index.partition_point(|(seq, _)| *seq <= after.saturating_add(1));
    index[..at]
        .iter()
        .rev()
        .find(|(seq, offset)| seq_at(log, *offset) == Some(*seq))
        .map_or(0, |(_, offset)| *offset)
}

/// Where the complete records end, and the bytes of text they hold.
pub(super) fn complete_end(log: File) -> io::Result<(u64, u64)> {
    let mut records = Records::at(log, 0)?;
    let mut text = 0;
    let mut end = 0;
    while let Some(chunk) = records.next_chunk("")? {
        text += chunk.text.len() as u64;
        end = records.offset();
    }
    Ok((end, text))
}
