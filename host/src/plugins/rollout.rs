//! Rollouts of plugin versions on live traffic: a candidate judged in shadow beside the serving
//! version and diffed ([`shadow`], [`diff`]), promoted when the [`gate`] holds, and a swapped-in
//! version put on [`probation`] and rolled back when it breaks its budget. [`settings`] is a
//! plugin entry's `rollout` table; [`redact`] takes secrets out of the inputs these show.

pub mod diff;
pub mod gate;
pub mod probation;
pub mod redact;
pub mod settings;
pub mod shadow;

pub use settings::RolloutSettings;
