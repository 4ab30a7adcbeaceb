//! The files new projects are written from, carried in the binary: the templates, the WIT, the
//! Rust SDK with the shell parser it depends on, and the Python and JavaScript shims (listed by
//! the build script).

/// `(path relative to the repository, bytes)`, sorted by path.
const FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/authoring_files.rs"));

/// The file at `path`.
pub fn file(path: &str) -> Option<&'static [u8]> {
    FILES
        .binary_search_by(|(candidate, _)| candidate.cmp(&path))
        .ok()
        .map(|index| FILES[index].1)
}

/// The file at `path` as text; it is part of the build, so a missing one is a bug of the build.
pub fn text(path: &str) -> &'static str {
    let bytes = file(path).unwrap_or_else(|| panic!("{path} is not carried in the binary"));
    std::str::from_utf8(bytes).unwrap_or_else(|_| panic!("{path} is not UTF-8"))
}

/// Every file under `dir/`, with its path relative to `dir`.
pub fn under(dir: &str) -> impl Iterator<Item = (&'static str, &'static [u8])> {
    let prefix = format!("{dir}/");
    FILES
        .iter()
        .filter_map(move |(path, bytes)| path.strip_prefix(prefix.as_str()).map(|rest| (rest, *bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sources_are_sorted_and_found() {
        assert!(FILES.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert!(text("wit/worlds.wit").contains("world command-sanitizer"));
        assert!(under("sdk/src").any(|(path, _)| path == "lib.rs"));
        assert!(file("wit/nothing.wit").is_none());
    }
}
