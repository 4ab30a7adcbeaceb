//! Differential test of the sanitizer against real shells: every script of a corpus (hand-written
//! forms plus generated combinations) that the default sanitizer accepts is run by `dash` and by
//! `bash` with `PATH` holding only recording stubs (each logs its name and exits 0) in a
//! throwaway directory. A program a shell actually executed that the parser did not report for
//! that script (the literal first words of its simple commands, in every scope), or that the
//! allowlist does not name, is a disagreement between what the parser believes and what the
//! shell does: a bug.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdev_plugin_sdk::shell::{self, Element, SimpleCommand};
use rdev_plugin_sdk::{Command as PluginCommand, CommandContext, Sanitizer, Verdict};
use shell_sanitizer::ShellSanitizer;
use shell_sanitizer::config::Config;

/// Programs that get a stub besides the allowlist: what a script must never reach.
const FORBIDDEN: &[&str] = &[
    "sh", "bash", "dash", "env", "xargs", "sudo", "su", "curl", "wget", "nc", "perl", "ruby", "eval", "exec", "chmod",
    "chown", "dd", "ssh", "scp", "rsync", "awk", "nohup", "timeout", "nice", "strace", "busybox", "evil",
];

/// Hand-written forms: quoting, expansions, here-docs, functions, subshells, substitutions,
/// redirections, line continuations, Unicode, and the ways a shell runs a name it was not given.
const FORMS: &[&str] = &[
    "ls -la",
    "echo 'a b' \"c $HOME\" d\\ e",
    "cat <<EOF\nhello $(echo x)\nEOF",
    "cat <<'EOF'\n$(evil)\nEOF",
    "grep -r foo . | sort | uniq -c",
    "(cd sub && ls)",
    "{ echo a; echo b; } > out.txt",
    "echo $(date)",
    "echo `date`",
    "x=1; echo $x",
    "for f in a b; do echo $f; done",
    "if test -f x; then cat x; else echo no; fi",
    "while false; do evil; done",
    "case x in x) echo y;; esac",
    "echo a \\\n  b",
    "echo héllo wörld ✓",
    "ls() { evil; }; ls",
    "f() { evil; }; f",
    "cat() evil; cat",
    "command evil",
    "builtin evil",
    "exec evil",
    "env evil",
    "xargs evil </dev/null",
    "find . -exec evil {} \\;",
    "alias ls=evil; ls",
    ". ./evil.sh",
    "source ./evil.sh",
    "trap evil EXIT",
    "echo $((x[$(evil)]))",
    "eval evil",
    "$(echo evil)",
    "`echo evil`",
    "e=evil; $e",
    "\"ev\"il",
    "ev''il",
    "\\evil",
    "ev\\il",
    "PATH=/x evil",
    "set -- evil; \"$@\"",
    "echo ${x:-$(evil)}",
    "echo ${x:=`evil`}",
    "cat < <(evil)",
    "echo > >(evil)",
    "test -n \"$(evil)\"",
    "[ \"$(evil)\" = x ]",
    "ls | while read l; do echo $l; done",
    "read -r x <<< \"$(evil)\"",
    "time evil",
    "! evil",
    "coproc evil",
    "select x in a; do evil; done </dev/null",
    "printf '%s\\n' a b | sort",
    "mkdir -p d && touch d/f && rm d/f",
    "sleep 0 & wait",
    "echo a; exit 0",
    "printf -v 'a[$(evil)]' x",
    "read 'a[$(evil)]' <<< x",
    "x='a[$(evil)]'; echo $((x))",
    "x='a[$(evil)]'; echo ${y[x]}",
    "set -k; ls PATH=/nonexistent",
    "i=0; i=$((i + 1)); echo $i",
    "for n in $(seq 1 3); do echo $((n * 2)); done",
];

/// Short pieces combined two by two into the generated part of the corpus.
const PIECES: &[&str] = &[
    "ls",
    "echo x",
    "cat f",
    "evil",
    "$(evil)",
    "`evil`",
    "f() { evil; }",
    "f",
    "x=evil",
    "$x",
    "grep a b",
    "{ evil; }",
    "(evil)",
    "command ls",
    "exec ls",
    "eval ls",
    "echo $(ls)",
    "test -f x",
    "true",
    "false",
    "alias a=evil",
    "a",
    "read x",
    "sort",
    "wc -l",
    "'evil'",
    "\"evil\"",
    "e\\vil",
    "$(echo ls)",
];

const SEPARATORS: &[&str] = &["; ", " && ", " || ", " | ", "\n", " & "];

fn corpus() -> Vec<String> {
    let mut scripts: Vec<String> = FORMS.iter().map(|s| (*s).to_owned()).collect();
    for (i, a) in PIECES.iter().enumerate() {
        for (j, b) in PIECES.iter().enumerate() {
            let separator = SEPARATORS[(i * 7 + j * 3) % SEPARATORS.len()];
            scripts.push(format!("{a}{separator}{b}"));
        }
    }
    scripts
}

fn accepted(config: &Config, script: &str, workdir: &Path) -> bool {
    let command = PluginCommand::shell(script);
    let context = CommandContext {
        project: "demo".into(),
        workdir: workdir.display().to_string(),
        key_id: "key_test".into(),
        scopes: Vec::new(),
    };
    matches!(ShellSanitizer::sanitize(config, &command, &context), Verdict::Allow)
}

/// The programs the parser reports for a script: the literal first word of every simple command
/// of every scope, by its last path component.
fn reported(script: &str) -> BTreeSet<String> {
    let parsed = shell::parse(script).expect("an accepted script parses");
    parsed
        .pipelines
        .iter()
        .flat_map(|pipeline| &pipeline.elements)
        .filter_map(|element| match element {
            Element::Simple(SimpleCommand { words, .. }) => words.first()?.literal(),
            _ => None,
        })
        .map(|name| name.rsplit('/').next().unwrap_or(&name).to_owned())
        .collect()
}

/// A directory of stubs: each program logs its name to `$STUB_LOG` and exits 0.
fn stubs(dir: &Path, names: &BTreeSet<String>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    for name in names {
        if name.contains('/') || name.is_empty() {
            continue;
        }
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\nprintf '%s\\n' \"${0##*/}\" >> \"$STUB_LOG\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The absolute path of a shell, found on the test's own `PATH` (the child's `PATH` holds only
/// stubs, and a bare name would resolve to the stub of that name).
fn shell_path(name: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed (scripts/test.sh installs dash and bash)"))
}

/// The programs `shell` executed for `script`, in a fresh directory with only stubs on `PATH`.
fn executed(shell: &Path, script: &str, stub_dir: &Path, scratch: &Path) -> BTreeSet<String> {
    let work = scratch.join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("sub")).unwrap();
    std::fs::write(work.join("evil.sh"), "evil\n").unwrap();
    // A log of its own per run: a background job of an earlier script may still be running
    // and would otherwise write its name into this script's log.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = scratch.join(format!("log-{run}"));
    let mut child = Command::new(shell)
        .arg("-c")
        .arg(script)
        .current_dir(&work)
        .env_clear()
        .env("PATH", stub_dir)
        .env("HOME", &work)
        .env("STUB_LOG", &log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn accepted_scripts_run_only_allowed_programs_in_dash_and_bash() {
    let config = Config::default();
    let scratch = tempfile::tempdir().unwrap();
    let mut names: BTreeSet<String> = FORBIDDEN.iter().map(|s| (*s).to_owned()).collect();
    names.extend(config.programs.iter().cloned());
    let stub_dir = scratch.path().join("stubs");
    stubs(&stub_dir, &names);
    let shells = ["dash", "bash"].map(|name| (name, shell_path(name)));
    let mut disagreements = Vec::new();
    let mut checked = 0;
    for script in corpus() {
        if !accepted(&config, &script, &scratch.path().join("work")) {
            continue;
        }
        checked += 1;
        let reported = reported(&script);
        for (name, shell) in &shells {
            let ran = executed(shell, &script, &stub_dir, scratch.path());
            let unseen: Vec<&String> = ran
                .iter()
                .filter(|p| !reported.contains(*p) || !config.allows_program(p))
                .collect();
            if !unseen.is_empty() {
                disagreements.push(format!(
                    "{name} ran {unseen:?} for accepted script {script:?} (the parser reported {reported:?})"
                ));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} scripts were accepted: the corpus no longer tests much"
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
