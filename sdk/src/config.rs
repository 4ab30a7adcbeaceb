//! Plugin configuration: parsing the JSON handed to `configure`, and keeping the parsed value for
//! the entry points of the same instance (instances are fresh per call and single-threaded).

use serde::de::DeserializeOwned;
use std::any::Any;
use std::cell::RefCell;

thread_local! {
    static CONFIG: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Parses a plugin configuration the way `configure` does: `""`, `null` and `{}` give
/// `C::default()`, anything else must deserialize into `C`; then `check` runs. The error is the
/// message `configure` returns to the host.
pub fn parse_config<C>(json: &str, check: fn(&C) -> Result<(), String>) -> Result<C, String>
where
    C: DeserializeOwned + Default,
{
    let config = if json.trim().is_empty() {
        C::default()
    } else {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("invalid configuration: not JSON: {e}"))?;
        match value {
            serde_json::Value::Null => C::default(),
            serde_json::Value::Object(ref map) if map.is_empty() => C::default(),
            value => serde_json::from_value(value).map_err(|e| format!("invalid configuration: {e}"))?,
        }
    };
    check(&config).map_err(|e| format!("invalid configuration: {e}"))?;
    Ok(config)
}

/// Parses and stores the configuration of this instance; a refused one leaves none stored.
pub(crate) fn configure<C>(json: &str, check: fn(&C) -> Result<(), String>) -> Result<(), String>
where
    C: DeserializeOwned + Default + 'static,
{
    let parsed = parse_config(json, check);
    CONFIG.with_borrow_mut(|slot| {
        *slot = None;
        let config = parsed?;
        *slot = Some(Box::new(config));
        Ok(())
    })
}

/// Runs `f` with the stored configuration, or with `C::default()` if `configure` was never called.
pub(crate) fn with_config<C, R>(f: impl FnOnce(&C) -> R) -> R
where
    C: Default + 'static,
{
    CONFIG.with_borrow(
        |slot| match slot.as_ref().and_then(|config| config.downcast_ref::<C>()) {
            Some(config) => f(config),
            None => f(&C::default()),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Limits {
        max: u32,
    }

    fn no_check(_: &Limits) -> Result<(), String> {
        Ok(())
    }

    fn max_below_ten(limits: &Limits) -> Result<(), String> {
        if limits.max < 10 {
            Ok(())
        } else {
            Err("max must be below 10".into())
        }
    }

    #[test]
    fn empty_null_and_empty_object_give_the_default() {
        for json in ["", "  ", "null", "{}", " { } "] {
            assert_eq!(parse_config(json, no_check), Ok(Limits::default()), "{json:?}");
        }
    }

    #[test]
    fn parses_a_full_configuration() {
        assert_eq!(parse_config(r#"{"max": 3}"#, no_check), Ok(Limits { max: 3 }));
    }

    #[test]
    fn refuses_unknown_fields_with_their_name() {
        let error = parse_config::<Limits>(r#"{"max": 3, "mx": 4}"#, no_check).unwrap_err();
        assert!(
            error.starts_with("invalid configuration:") && error.contains("mx"),
            "{error}"
        );
    }

    #[test]
    fn refuses_text_that_is_not_json() {
        let error = parse_config::<Limits>("max=3", no_check).unwrap_err();
        assert!(error.contains("not JSON"), "{error}");
    }

    #[test]
    fn runs_the_semantic_check() {
        assert_eq!(
            parse_config(r#"{"max": 12}"#, max_below_ten),
            Err("invalid configuration: max must be below 10".to_string())
        );
    }

    #[test]
    fn entry_points_see_the_stored_configuration_or_the_default() {
        assert_eq!(with_config(|limits: &Limits| limits.max), 0);
        configure(r#"{"max": 7}"#, no_check).unwrap();
        assert_eq!(with_config(|limits: &Limits| limits.max), 7);
        assert!(configure::<Limits>(r#""max""#, no_check).is_err());
        assert_eq!(with_config(|limits: &Limits| limits.max), 0);
    }
}
