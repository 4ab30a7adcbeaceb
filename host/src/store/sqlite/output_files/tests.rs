use std::io::Write;

use super::*;

fn chunk(seq: i64, text: String) -> OutputChunk {
    OutputChunk {
        command_id: "c1".into(),
        seq,
        stream: if seq % 3 == 0 { "stderr" } else { "stdout" }.into(),
        text,
    }
}

/// 3,000 chunks of about 1 KiB, appended in batches of 100: several index pairs.
fn filled(dir: &Path) -> (OutputFiles, Vec<OutputChunk>) {
    let files = OutputFiles::new(dir.to_owned());
    let chunks: Vec<_> = (1..=3000)
        .map(|seq| chunk(seq, format!("{seq:04} {}\n", "é".repeat(500))))
        .collect();
    for batch in chunks.chunks(100) {
        files.append(batch).unwrap();
    }
    (files, chunks)
}

#[test]
fn chunks_read_back_in_order_from_any_point() {
    let dir = tempfile::tempdir().unwrap();
    let (files, chunks) = filled(dir.path());
    let index = record::read_index(&File::open(dir.path().join("c1.idx")).unwrap()).unwrap();
    assert!(index.len() > 2, "{index:?}");
    for after in [0, 1, 1499, 2100, 2999, 3000, 5000] {
        let page = files.read_after("c1", after, 700).unwrap().unwrap();
        let from = usize::try_from(after).unwrap().min(3000);
        assert_eq!(page, chunks[from..(from + 700).min(3000)], "after {after}");
    }
    assert_eq!(files.read_tail("c1", 5).unwrap().unwrap(), chunks[2995..]);
    assert_eq!(files.read_after("none", 0, 10).unwrap(), None);
    let text: u64 = chunks.iter().map(|c| c.text.len() as u64).sum();
    assert_eq!(files.seal("c1").unwrap(), Some(text));
    assert_eq!(files.seal("none").unwrap(), None);
    assert!(files.remove("c1").unwrap());
    assert_eq!(files.read_after("c1", 0, 10).unwrap(), None);
}

#[test]
fn a_torn_record_is_never_read_and_is_cut_off_before_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let (files, chunks) = filled(dir.path());
    files.seal("c1").unwrap();
    let log = dir.path().join("c1.log");
    let whole = std::fs::metadata(&log).unwrap().len();
    // A crash in the middle of a write: a header and part of its text.
    let mut torn = Vec::new();
    record::encode_header(&chunk(3001, "x".repeat(100)), &mut torn).unwrap();
    torn.extend_from_slice(b"xxxx");
    OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&torn)
        .unwrap();
    assert_eq!(files.read_after("c1", 2990, 100).unwrap().unwrap(), chunks[2990..]);

    let reopened = OutputFiles::new(dir.path().to_owned());
    reopened.append(&[chunk(3001, "after the crash\n".into())]).unwrap();
    let tail = reopened.read_tail("c1", 2).unwrap().unwrap();
    assert_eq!(tail, [chunks[2999].clone(), chunk(3001, "after the crash\n".into())]);
    assert!(std::fs::metadata(&log).unwrap().len() > whole);
}

#[test]
fn a_damaged_record_ends_what_is_read_and_a_wrong_index_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (files, chunks) = filled(dir.path());
    let log = dir.path().join("c1.log");
    let mut bytes = std::fs::read(&log).unwrap();
    // Damage the text of chunk 2500.
    let at = bytes.windows(5).position(|w| w == b"2500 ").unwrap();
    bytes[at] = b'X';
    std::fs::write(&log, &bytes).unwrap();
    let page = files.read_after("c1", 2400, 1000).unwrap().unwrap();
    assert_eq!(page, chunks[2400..2499]);
    // An index whose pairs point nowhere: reading starts from the beginning instead.
    std::fs::write(dir.path().join("c1.idx"), [7u8; 64]).unwrap();
    assert_eq!(files.read_after("c1", 10, 5).unwrap().unwrap(), chunks[10..15]);
}

#[test]
fn ids_that_could_leave_the_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let files = OutputFiles::new(dir.path().to_owned());
    let mut bad = chunk(1, "x".into());
    bad.command_id = "../escape".into();
    let err = files.append(&[bad]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(files.read_after("a/b", 0, 1).is_err());
}
