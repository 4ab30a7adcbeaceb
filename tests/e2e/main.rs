//! End-to-end tests: the real `rdev` binary with a real database and real processes.

mod access;
mod api_errors;
mod audit;
mod backends;
mod claude_items;
mod cli;
mod commands;
mod common;
mod deploy;
mod durability;
mod edge;
mod hostile_plugins;
mod keys;
mod kubernetes;
mod lifecycle;
mod orphans;
mod partition;
mod plugin_files;
mod plugin_harness;
mod plugin_tutorial;
mod plugins;
mod queue;
mod replicas;
mod smoke;
mod store;
mod streaming;
