//! rdev: a gateway for remote development. Clients run commands in project workspaces through a
//! REST API and watch their output live over SSE; policy decisions go through plugin seams.

pub mod app;
pub mod auth;
pub mod claude_items;
pub mod cli;
pub mod commands;
pub mod config;
pub mod exec;
pub mod http;
pub mod limits;
pub mod names;
pub mod plugins;
pub mod projects;
pub mod replicas;
pub mod store;
pub mod streaming;
pub mod telemetry;
pub mod time;
