//! `--message-format json`: one JSON object per line on stdout, and nothing else there.

use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;

use super::wire::{Event, HolderLine, summary_line};
use super::{Reporter, Summary};
use crate::error::Error;
use crate::model::{Holder, Removed};
use crate::purge::Problems;
use crate::scan::Uninspectable;
use crate::terminate::{Ended, Sig};
use crate::verify::Verified;

pub struct JsonReporter {
    /// Where the lines go (stdout), and the first error writing there: after one, no more lines are written (a
    /// reader that missed a line must not take the rest for a whole stream), and the run ends with an error.
    out: Mutex<(Box<dyn Write + Send>, Option<std::io::Error>)>,
}

impl JsonReporter {
    pub fn new() -> Self {
        Self::to(Box::new(std::io::stdout()))
    }

    /// Writes the lines to `out` instead of stdout.
    pub fn to(out: Box<dyn Write + Send>) -> Self {
        JsonReporter { out: Mutex::new((out, None)) }
    }

    /// Writes `value` as one whole line: serialised first, so a failure can never leave half an object.
    fn line(&self, value: &impl Serialize) {
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (stdout, failed) = &mut *out;
        if failed.is_some() {
            return;
        }
        let written = serde_json::to_vec(value).map_err(std::io::Error::other).and_then(|mut line| {
            line.push(b'\n');
            stdout.write_all(&line)?;
            stdout.flush()
        });
        if let Err(e) = written {
            *failed = Some(e);
        }
    }
}

fn stderr(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

impl Reporter for JsonReporter {
    fn holders(&self, holders: &[Holder], _uninspectable: &Uninspectable) {
        for h in holders {
            self.line(&Event::Holder(HolderLine::from(h)));
        }
    }

    fn signal(&self, holder: &Holder, sig: Sig) {
        self.line(&Event::signal(holder, sig));
    }

    fn ended(&self, holder: &Holder, ended: &Ended) {
        // A survivor did not exit: the summary's outcome says what became of it.
        if ended.outcome != crate::model::Outcome::Survived {
            self.line(&Event::exited(holder, ended));
        }
    }

    fn removed(&self, removed: &Removed, _problems: &Problems) {
        self.line(&Event::Removed(*removed));
    }

    fn verify_line(&self, line: &str) {
        // cargo's own output stays readable on stderr; stdout carries only JSON.
        stderr(line);
    }

    fn verify_finished(&self, verified: &Verified) {
        self.line(&Event::verify(verified));
    }

    fn warning(&self, message: &str) {
        stderr(&format!("warning: {message}"));
    }

    fn finish(&self, summary: &Summary, error: Option<&Error>) -> std::io::Result<()> {
        if let Some(e) = error {
            stderr(&format!("error: {e}"));
        }
        self.line(&summary_line(summary));
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match out.1.take() {
            None => Ok(()),
            Some(e) => {
                stderr(&format!(
                    "error: could not write the JSON lines to stdout: {e}; the stream is incomplete, so this run \
                     ends with an error whatever it did (its actions are above on stderr)"
                ));
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Outcome, Process};
    use std::sync::Arc;

    /// A writer the test can read back, or one that fails after `fail_after` bytes.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>, Option<usize>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut v = self.0.lock().unwrap();
            if self.1.is_some_and(|limit| v.len() + buf.len() > limit) {
                return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
            }
            v.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn holder() -> Holder {
        let process = Process {
            pid: 7,
            ppid: 1,
            pgid: 7,
            start_time: 1,
            name: "x".into(),
            cmdline: vec![],
            exe: None,
            uid: None,
        };
        Holder {
            process,
            handles: vec![],
            kind: crate::model::Kind::TargetBinary,
            verdict: crate::model::Verdict::Terminate,
            spare_reason: None,
            relation: None,
            via: None,
            outcome: None,
            note: None,
        }
    }

    #[test]
    fn a_survivor_gets_no_exited_line() {
        let sink = Sink::default();
        let r = JsonReporter::to(Box::new(sink.clone()));
        let at = std::time::Duration::from_millis(5);
        r.ended(&holder(), &Ended { outcome: Outcome::Survived, note: None, at });
        r.ended(&holder(), &Ended { outcome: Outcome::Killed, note: None, at });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "{\"reason\":\"exited\",\"pid\":7,\"outcome\":\"killed\",\"after_ms\":5}\n");
    }

    #[test]
    fn a_failed_write_stops_the_stream_and_fails_the_finish() {
        let sink = Sink(Arc::default(), Some(100));
        let r = JsonReporter::to(Box::new(sink.clone()));
        r.signal(&holder(), Sig::Term);
        r.signal(&holder(), Sig::Cont);
        assert!(r.finish(&Summary::default(), None).is_err());
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "{text}");
    }
}
