//! Label and field selectors, with the syntax and semantics of the real API server's query parameters.

use std::collections::BTreeMap;

use crate::objects::Stored;

/// Which objects a list or watch request wants: its namespace (none = cluster-wide) and its selectors.
pub(crate) struct Filter {
    pub(crate) namespace: Option<String>,
    pub(crate) labels: Vec<LabelRequirement>,
    pub(crate) fields: Vec<FieldRequirement>,
}

impl Filter {
    pub(crate) fn matches(&self, object: &Stored) -> bool {
        self.namespace.as_ref().is_none_or(|ns| *ns == object.namespace)
            && self.labels.iter().all(|r| r.matches(&object.labels))
            && self.fields.iter().all(|r| r.matches(object))
    }
}

/// One comma-separated term of a `labelSelector`.
#[derive(Debug, PartialEq)]
pub(crate) enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl LabelRequirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Equals(k, v) => labels.get(k) == Some(v),
            // Like the real server, `!=` and `notin` also select objects without the label.
            Self::NotEquals(k, v) => labels.get(k) != Some(v),
            Self::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Self::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Self::Exists(k) => labels.contains_key(k),
            Self::NotExists(k) => !labels.contains_key(k),
        }
    }
}

/// Parses a `labelSelector` value; the error is the message of a 400 response.
pub(crate) fn parse_labels(selector: &str) -> Result<Vec<LabelRequirement>, String> {
    split_terms(selector).into_iter().map(parse_label_term).collect()
}

/// Splits at commas that are not inside the parentheses of an `in`/`notin` set.
fn split_terms(selector: &str) -> Vec<&str> {
    let (mut terms, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    terms.into_iter().map(str::trim).filter(|t| !t.is_empty()).collect()
}

fn parse_label_term(term: &str) -> Result<LabelRequirement, String> {
    let invalid = || format!("unable to parse requirement: {term:?}");
    let requirement = if let Some(key) = term.strip_prefix('!') {
        LabelRequirement::NotExists(key.trim().into())
    } else if let Some((head, set)) = term.split_once('(') {
        let set = set.strip_suffix(')').ok_or_else(invalid)?;
        let values = set.split(',').map(|v| v.trim().to_string()).collect();
        match head.split_whitespace().collect::<Vec<_>>()[..] {
            [key, "in"] => LabelRequirement::In(key.into(), values),
            [key, "notin"] => LabelRequirement::NotIn(key.into(), values),
            _ => return Err(invalid()),
        }
    } else if let Some((key, value)) = split_comparison(term) {
        match value {
            Comparison::Equals(v) => LabelRequirement::Equals(key, v),
            Comparison::NotEquals(v) => LabelRequirement::NotEquals(key, v),
        }
    } else {
        LabelRequirement::Exists(term.into())
    };
    let key = requirement.key();
    if key.is_empty() || key.contains(char::is_whitespace) {
        Err(invalid())
    } else {
        Ok(requirement)
    }
}

impl LabelRequirement {
    fn key(&self) -> &str {
        match self {
            Self::Equals(k, _) | Self::NotEquals(k, _) | Self::In(k, _) | Self::NotIn(k, _) => k,
            Self::Exists(k) | Self::NotExists(k) => k,
        }
    }
}

enum Comparison {
    Equals(String),
    NotEquals(String),
}

/// Splits `k!=v`, `k==v` and `k=v` into the trimmed key and the comparison.
fn split_comparison(term: &str) -> Option<(String, Comparison)> {
    let owned = |s: &str| s.trim().to_string();
    if let Some((k, v)) = term.split_once("!=") {
        Some((owned(k), Comparison::NotEquals(owned(v))))
    } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        Some((owned(k), Comparison::Equals(owned(v))))
    } else {
        None
    }
}

/// One term of a `fieldSelector`: only the fields every kind supports.
#[derive(Debug, PartialEq)]
pub(crate) struct FieldRequirement {
    field: Field,
    value: String,
    equal: bool,
}

#[derive(Debug, PartialEq)]
enum Field {
    Name,
    Namespace,
}

impl FieldRequirement {
    fn matches(&self, object: &Stored) -> bool {
        let actual = match self.field {
            Field::Name => &object.name,
            Field::Namespace => &object.namespace,
        };
        (*actual == self.value) == self.equal
    }
}

/// Parses a `fieldSelector` value; the error is the message of a 400 response.
pub(crate) fn parse_fields(selector: &str) -> Result<Vec<FieldRequirement>, String> {
    split_terms(selector).into_iter().map(parse_field_term).collect()
}

fn parse_field_term(term: &str) -> Result<FieldRequirement, String> {
    let (key, comparison) = split_comparison(term).ok_or_else(|| format!("invalid selector: {term:?}"))?;
    let field = match key.as_str() {
        "metadata.name" => Field::Name,
        "metadata.namespace" => Field::Namespace,
        other => return Err(format!("field label not supported: {other}")),
    };
    Ok(match comparison {
        Comparison::Equals(value) => FieldRequirement {
            field,
            value,
            equal: true,
        },
        Comparison::NotEquals(value) => FieldRequirement {
            field,
            value,
            equal: false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn selects(selector: &str, pairs: &[(&str, &str)]) -> bool {
        let requirements = parse_labels(selector).unwrap();
        requirements.iter().all(|r| r.matches(&labels(pairs)))
    }

    #[test]
    fn parses_every_label_operator() {
        let parsed = parse_labels("a=1, b==2,c!=3,d in (x, y),e notin (z),f,!g").unwrap();
        assert_eq!(
            parsed,
            vec![
                LabelRequirement::Equals("a".into(), "1".into()),
                LabelRequirement::Equals("b".into(), "2".into()),
                LabelRequirement::NotEquals("c".into(), "3".into()),
                LabelRequirement::In("d".into(), vec!["x".into(), "y".into()]),
                LabelRequirement::NotIn("e".into(), vec!["z".into()]),
                LabelRequirement::Exists("f".into()),
                LabelRequirement::NotExists("g".into()),
            ]
        );
    }

    #[test]
    fn negative_requirements_select_objects_without_the_label() {
        assert!(selects("app!=web", &[]));
        assert!(selects("app notin (web)", &[("tier", "x")]));
        assert!(!selects("app in (web)", &[]));
        assert!(selects("app in (web,db),!gone", &[("app", "db")]));
    }

    #[test]
    fn rejects_malformed_selectors() {
        assert!(parse_labels("a in (x").is_err());
        assert!(parse_labels("a b").is_err());
        assert!(parse_fields("spec.nodeName=n").is_err());
        assert!(parse_fields("metadata.name").is_err());
    }

    #[test]
    fn empty_selector_selects_everything() {
        assert!(parse_labels("").unwrap().is_empty());
        assert!(parse_fields(" ").unwrap().is_empty());
    }
}
