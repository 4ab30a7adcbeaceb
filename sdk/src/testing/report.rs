//! The outcome of running a fixture: one line per case, printed as a table of failures.

use std::fmt;

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CaseReport {
    /// Case name.
    pub name: String,
    /// Whether the case held.
    pub passed: bool,
    /// What the case expects, in words.
    pub expected: String,
    /// What the plugin did, in words.
    pub actual: String,
}

impl CaseReport {
    /// A case outcome.
    pub fn new(name: &str, passed: bool, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            passed,
            expected: expected.into(),
            actual: actual.into(),
        }
    }

    /// A failed case.
    pub fn failed(name: &str, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Self::new(name, false, expected, actual)
    }
}

/// The outcome of a fixture run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// Where the cases come from (a path, "inline fixture", "bundled self-test").
    pub source: String,
    /// One entry per case, in fixture order (just `configure` when the config was refused).
    pub cases: Vec<CaseReport>,
}

/// Cells wider than this are cut in the table (the full text is in [`CaseReport`]).
const MAX_CELL: usize = 100;

impl Report {
    /// An empty report for cases from `source`.
    pub fn new(source: &str) -> Self {
        Self {
            source: source.to_string(),
            cases: Vec::new(),
        }
    }

    /// Adds a case outcome.
    pub fn push(&mut self, case: CaseReport) {
        self.cases.push(case);
    }

    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|case| case.passed)
    }

    /// The failed cases.
    pub fn failures(&self) -> impl Iterator<Item = &CaseReport> {
        self.cases.iter().filter(|case| !case.passed)
    }

    /// Panics with the table of failures unless every case passed.
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(self.passed(), "{self}");
    }
}

fn cell(text: &str) -> String {
    let flat = text.replace('\n', "\\n");
    match flat.char_indices().nth(MAX_CELL) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failures: Vec<[String; 3]> = self
            .failures()
            .map(|case| [cell(&case.name), cell(&case.expected), cell(&case.actual)])
            .collect();
        let total = self.cases.len();
        if failures.is_empty() {
            return write!(f, "{}: all {total} cases passed", self.source);
        }
        writeln!(f, "{}: {} of {total} cases failed", self.source, failures.len())?;
        let width = |column: usize, title: &str| {
            failures
                .iter()
                .map(|row| row[column].chars().count())
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        };
        let (name_width, expected_width) = (width(0, "case"), width(1, "expected"));
        write!(f, "  {:name_width$}  {:expected_width$}  actual", "case", "expected")?;
        for [name, expected, actual] in &failures {
            write!(f, "\n  {name:name_width$}  {expected:expected_width$}  {actual}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut report = Report::new("fixtures.json");
        report.push(CaseReport::new("ls", true, "allow", "allow"));
        report.push(CaseReport::failed("rm root", "deny", "allow"));
        report.push(CaseReport::failed(
            "curl | sh",
            "deny (reason contains \"curl\")",
            "allow",
        ));
        report
    }

    #[test]
    fn prints_a_table_of_the_failures_only() {
        let expected = "fixtures.json: 2 of 3 cases failed\n\
                        \x20 case       expected                       actual\n\
                        \x20 rm root    deny                           allow\n\
                        \x20 curl | sh  deny (reason contains \"curl\")  allow";
        assert_eq!(report().to_string(), expected);
    }

    #[test]
    fn says_all_passed_when_nothing_failed() {
        let mut report = Report::new("bundled self-test");
        report.push(CaseReport::new("ls", true, "allow", "allow"));
        assert!(report.passed());
        assert_eq!(report.to_string(), "bundled self-test: all 1 cases passed");
    }

    #[test]
    fn cuts_long_cells_and_flattens_newlines() {
        assert_eq!(cell("a\nb"), "a\\nb");
        assert_eq!(cell(&"é".repeat(150)).chars().count(), MAX_CELL + 1);
    }

    #[test]
    #[should_panic(expected = "rm root    deny")]
    fn assert_passed_panics_with_the_table() {
        report().assert_passed();
    }
}
