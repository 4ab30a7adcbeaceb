//! CPU load for tests of races that show only on a loaded machine (the gateway's and this server's).

/// Processes that keep every CPU busy while a test runs, so that races show; killed on drop.
pub struct CpuHog(Vec<std::process::Child>);

impl CpuHog {
    pub fn start() -> CpuHog {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let spawn = || {
            std::process::Command::new("yes")
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn yes")
        };
        CpuHog((0..cpus).map(|_| spawn()).collect())
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
