//! Plugin authoring: `rdev plugins new` writes a project for a world in Rust, Python or
//! JavaScript from templates carried in the binary, and `rdev plugins build` turns a project into
//! a component with the language's own tool and checks that it implements its world.

mod build;
mod project;
mod scaffold;
mod sources;
mod vendor;

pub use build::{BuildError, build};
pub use project::{Lang, PROJECT_FILE, Project};
pub use scaffold::{ScaffoldError, TEMPLATE_WORLDS, scaffold};
