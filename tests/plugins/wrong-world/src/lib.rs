//! Hostile plugin: a valid component of the wrong world (`request-validator`) that tests offer
//! as a sanitizer. The gateway must reject it when loading (its exports do not match the
//! `command-sanitizer` world), never call it, and keep the previous version.

wit_bindgen::generate!({ path: "../../../wit", world: "request-validator" });

struct Plugin;

impl Guest for Plugin {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn self_test() -> Vec<ValidatorCase> {
        Vec::new()
    }

    fn validate(_resource: String, _request: String) -> Vec<FieldError> {
        Vec::new()
    }
}

export!(Plugin);
