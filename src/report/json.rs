//! `--message-format json`: one JSON object per line on stdout, and nothing else there. cargo's output and
//! warnings go to stderr.

use std::io::Write;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use super::{Reporter, failure_lines};
use crate::event::{Event, Summary};

pub struct JsonReporter {
    /// Where the lines go (stdout), and the first error writing there: after one, no more lines are written (a
    /// reader that missed a line must not take the rest for a whole stream), and the run ends with an error.
    out: Mutex<(Box<dyn Write + Send>, Option<std::io::Error>)>,
    err: Mutex<Box<dyn Write + Send>>,
}

impl JsonReporter {
    pub fn new(out: Box<dyn Write + Send>, err: Box<dyn Write + Send>) -> Self {
        JsonReporter { out: Mutex::new((out, None)), err: Mutex::new(err) }
    }

    /// Writes `value` as one whole line: serialised first, so a failure can never leave half an object.
    fn line(&self, value: &impl Serialize) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
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

    fn stderr(&self, text: &str) {
        let _ = writeln!(self.err.lock().unwrap_or_else(PoisonError::into_inner), "{text}");
    }
}

impl Reporter for JsonReporter {
    fn event(&self, event: &Event) {
        match event {
            e if e.is_json_line() => self.line(e),
            // cargo's own output stays readable on stderr; stdout carries only JSON.
            Event::CargoLine(line) => self.stderr(line),
            Event::Warning(message) => self.stderr(&format!("warning: {message}")),
            _ => {}
        }
    }

    fn finish(&self, summary: &Summary) -> std::io::Result<()> {
        // For the person watching: the summary's `error` says the same to the script.
        for line in summary.error.iter().flat_map(|f| failure_lines(f, false)) {
            self.stderr(&line);
        }
        self.line(summary);
        let failed = self.out.lock().unwrap_or_else(PoisonError::into_inner).1.take();
        match failed {
            None => Ok(()),
            Some(e) => {
                self.stderr(&format!(
                    "error: could not write the JSON lines to stdout: {e}; the stream is incomplete, so this run \
                     ends with an error whatever it did"
                ));
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Mode, Outcome, Sig};
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

    #[test]
    fn a_survivor_gets_no_exited_line() {
        let sink = Sink::default();
        let r = JsonReporter::new(Box::new(sink.clone()), Box::new(std::io::sink()));
        r.event(&Event::Survived { pid: 7, note: "stuck".into(), after_ms: 5 });
        r.event(&Event::Exited { pid: 7, outcome: Outcome::Killed, after_ms: 5 });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "{\"reason\":\"exited\",\"pid\":7,\"outcome\":\"killed\",\"after_ms\":5}\n");
    }

    #[test]
    fn a_failed_write_stops_the_stream_and_fails_the_finish() {
        let sink = Sink(Arc::default(), Some(100));
        let r = JsonReporter::new(Box::new(sink.clone()), Box::new(std::io::sink()));
        r.event(&Event::Signal { pid: 7, signal: Sig::Term });
        r.event(&Event::Signal { pid: 7, signal: Sig::Cont });
        assert!(r.finish(&Summary::empty(Mode::Clean, false, 0)).is_err());
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "{text}");
    }
}
