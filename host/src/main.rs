//! The `rdev` binary: parses the command line and hands over to the library.

fn main() -> std::process::ExitCode {
    rdev::install_tls_provider();
    rdev::cli::main()
}
