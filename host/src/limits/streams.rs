//! Open output streams per key on this replica; a permit counts one until it is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Open = Arc<Mutex<HashMap<String, u32>>>;

#[derive(Default, Clone)]
pub(super) struct Streams {
    open: Open,
}

/// One open stream of a key.
#[derive(Debug)]
pub struct StreamPermit {
    open: Open,
    key: String,
}

impl Streams {
    /// Counts a new stream of `key` unless it already has `cap` open (then that number).
    pub(super) fn open(&self, key: &str, cap: Option<u32>) -> Result<StreamPermit, u32> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key.to_owned()).or_default();
        if cap.is_some_and(|cap| *count >= cap) {
            return Err(*count);
        }
        *count += 1;
        Ok(StreamPermit {
            open: self.open.clone(),
            key: key.to_owned(),
        })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_cap_and_a_closed_stream_frees_a_place() {
        let streams = Streams::default();
        let first = streams.open("k", Some(2)).unwrap();
        let _second = streams.open("k", Some(2)).unwrap();
        assert_eq!(streams.open("k", Some(2)).unwrap_err(), 2);
        assert!(streams.open("other", Some(2)).is_ok());
        drop(first);
        assert!(streams.open("k", Some(2)).is_ok());
    }
}
