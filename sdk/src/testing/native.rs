//! Plugin types as [`Subject`]s: the same configuration parsing and JSON handling as the exported
//! component, called directly.

use super::Subject;
use crate::export::{format_json, judge_json, validate_json};
use crate::{
    Command, CommandContext, Discovery, FieldError, Formatter, InventoryItem, Project, Rendered, Sanitizer, ToolCall,
    ToolContext, ToolPolicy, ToolVerdict, Validator, Verdict, WebhookTarget, parse_config,
};

/// A [`Sanitizer`] run natively.
pub struct NativeSanitizer<P: Sanitizer> {
    config: P::Config,
}

impl<P: Sanitizer> Default for NativeSanitizer<P> {
    fn default() -> Self {
        Self {
            config: P::Config::default(),
        }
    }
}

impl<P: Sanitizer> Subject for NativeSanitizer<P> {
    fn configure(&mut self, config: &str) -> Result<(), String> {
        self.config = parse_config(config, P::check)?;
        Ok(())
    }

    fn sanitize(&mut self, command: &Command, context: &CommandContext) -> Result<Verdict, String> {
        Ok(P::sanitize(&self.config, command, context))
    }
}

/// A [`Validator`] run natively.
pub struct NativeValidator<P: Validator> {
    config: P::Config,
}

impl<P: Validator> Default for NativeValidator<P> {
    fn default() -> Self {
        Self {
            config: P::Config::default(),
        }
    }
}

impl<P: Validator> Subject for NativeValidator<P> {
    fn configure(&mut self, config: &str) -> Result<(), String> {
        self.config = parse_config(config, P::check)?;
        Ok(())
    }

    fn validate(&mut self, resource: &str, request: &str) -> Result<Vec<FieldError>, String> {
        Ok(validate_json::<P>(&self.config, resource, request))
    }
}

/// A [`Formatter`] run natively.
pub struct NativeFormatter<P: Formatter> {
    config: P::Config,
}

impl<P: Formatter> Default for NativeFormatter<P> {
    fn default() -> Self {
        Self {
            config: P::Config::default(),
        }
    }
}

impl<P: Formatter> Subject for NativeFormatter<P> {
    fn configure(&mut self, config: &str) -> Result<(), String> {
        self.config = parse_config(config, P::check)?;
        Ok(())
    }

    fn format(
        &mut self,
        event_type: &str,
        event: &str,
        target: &WebhookTarget,
    ) -> Result<Result<Rendered, String>, String> {
        Ok(format_json::<P>(&self.config, event_type, event, target))
    }
}

/// A [`Discovery`] run natively.
pub struct NativeDiscovery<P: Discovery> {
    config: P::Config,
}

impl<P: Discovery> Default for NativeDiscovery<P> {
    fn default() -> Self {
        Self {
            config: P::Config::default(),
        }
    }
}

impl<P: Discovery> Subject for NativeDiscovery<P> {
    fn configure(&mut self, config: &str) -> Result<(), String> {
        self.config = parse_config(config, P::check)?;
        Ok(())
    }

    fn discover(&mut self, inventory: &[InventoryItem]) -> Result<Result<Vec<Project>, String>, String> {
        Ok(P::discover(&self.config, inventory))
    }
}

/// A [`ToolPolicy`] run natively.
pub struct NativeToolPolicy<P: ToolPolicy> {
    config: P::Config,
}

impl<P: ToolPolicy> Default for NativeToolPolicy<P> {
    fn default() -> Self {
        Self {
            config: P::Config::default(),
        }
    }
}

impl<P: ToolPolicy> Subject for NativeToolPolicy<P> {
    fn configure(&mut self, config: &str) -> Result<(), String> {
        self.config = parse_config(config, P::check)?;
        Ok(())
    }

    fn judge_tool(&mut self, call: &ToolCall, context: &ToolContext) -> Result<ToolVerdict, String> {
        Ok(judge_json::<P>(&self.config, call, context))
    }
}
