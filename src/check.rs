//! The check of `--if-broken` (and its re-check after a repair): cargo run with JSON diagnostics, shown to the
//! user as cargo renders them, collected for [`crate::diagnose`], and watched for a wait on a build or artifact dir
//! lock. Whether cargo waits is read from the locks themselves where the platform shows waiters; elsewhere from
//! cargo's own "Blocking waiting" line on its stderr, and only before a test binary runs (after that, any line may
//! be a test's).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::diagnose::Diagnostic;
use crate::event::Event;
use crate::interrupt::Interrupt;
use crate::layout::LockName;
use crate::model::Verified;
use crate::platform::Platform;
use crate::verify::{self, Blocked, Request, Stream, VerifyError};
use crate::workspace::Dirs;

/// What one check said.
#[derive(Debug)]
pub struct Ran {
    pub verified: Verified,
    pub diagnostics: Vec<Diagnostic>,
    /// The build or artifact dir lock it waited for, when it did (it was stopped then).
    pub blocked: Option<PathBuf>,
    /// The units cargo compiled (not fresh), by target name, as its JSON says.
    pub rebuilt: Vec<String>,
    pub duration_ms: u64,
}

/// Where the check looks, and whom it tells.
pub struct Watch<'a> {
    pub platform: &'a Platform,
    pub interrupt: &'a Interrupt,
    pub dirs: &'a Dirs,
    /// Cargo's build and artifact dir locks, whose waiters the platform may show.
    pub locks: &'a [PathBuf],
    pub cargo_home: Option<&'a Path>,
    /// The user's check arguments: a human `--message-format` among them means the text is what is judged.
    pub check_args: &'a [OsString],
    pub emit: &'a (dyn Fn(Event) + Sync),
    /// Cargo waits for the package cache: `--unlock`'s matter, only named.
    pub on_package_cache: Box<dyn Fn(&Blocked) + Sync + 'a>,
}

/// The target a `compiler-artifact` line says was compiled now (not fresh).
fn compiled(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    (v["reason"] == "compiler-artifact" && v["fresh"] == false)
        .then(|| v["target"]["name"].as_str().map(str::to_owned))?
}

/// Runs the check `req` (with JSON diagnostics) once.
pub fn run(req: &Request<'_>, w: &Watch<'_>) -> Result<Ran, VerifyError> {
    let start = Instant::now();
    let diagnostics = Mutex::new(Vec::new());
    let blocked: Mutex<Option<PathBuf>> = Mutex::default();
    let rebuilt = Mutex::new(Vec::new());
    let text_waits = w.platform.waiting_for(w.locks).is_none();
    let tests_run = AtomicBool::new(false);
    let by_text = w
        .check_args
        .iter()
        .any(|a| a.to_str().is_some_and(|a| a.starts_with("--message-format") && !a.contains("json")));
    let on_line = |stream: Stream, line: &str| {
        if let Some((d, rendered)) = Diagnostic::from_json(line) {
            for l in rendered.as_deref().unwrap_or(&d.message).lines() {
                (w.emit)(Event::CargoLine(l.to_string()));
            }
            diagnostics.lock().expect("check diagnostics").push(d);
            return;
        }
        // Cargo's other JSON messages (artifacts, build scripts) are not for people.
        if stream == Stream::Stdout && line.starts_with("{\"reason\":") {
            if let Some(name) = compiled(line) {
                rebuilt.lock().expect("rebuilt units").push(name);
            }
            return;
        }
        (w.emit)(Event::CargoLine(line.to_string()));
        if by_text {
            diagnostics.lock().expect("check diagnostics").extend(Diagnostic::from_text(line));
        }
        if stream != Stream::Stderr || tests_run.load(Ordering::Relaxed) {
            return;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("Running ") || trimmed.starts_with("Doc-tests ") {
            tests_run.store(true, Ordering::Relaxed);
        }
        match verify::blocked_on(line, w.dirs, w.cargo_home) {
            Some(b) if b.lock == LockName::PackageCache => (w.on_package_cache)(&b),
            Some(b) if text_waits => *blocked.lock().expect("blocked lock") = b.files.into_iter().next(),
            _ => {}
        }
    };
    // The locks themselves say it waits, even when `-q` hides cargo's line.
    let watch = |cargo: u32| {
        let mut b = blocked.lock().expect("blocked lock");
        if b.is_none()
            && let Some(waits) = w.platform.waiting_for(w.locks)
        {
            *b = waits.into_iter().find(|(pid, _)| *pid == cargo).map(|(_, lock)| lock);
        }
        b.is_some()
    };
    (w.emit)(Event::CheckStarted { command: req.shown() });
    let verified = verify::run(req, w.platform, w.interrupt, &on_line, &watch)?;
    Ok(Ran {
        verified,
        diagnostics: diagnostics.into_inner().expect("check diagnostics"),
        blocked: blocked.into_inner().expect("blocked lock"),
        rebuilt: rebuilt.into_inner().expect("rebuilt units"),
        duration_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}
