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
    out: Mutex<std::io::Stdout>,
}

impl JsonReporter {
    pub fn new() -> Self {
        JsonReporter { out: Mutex::new(std::io::stdout()) }
    }

    fn line(&self, value: &impl Serialize) {
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A reader that went away (`| head`) is not our failure: the run goes on, the lines are dropped.
        let _ = serde_json::to_writer(&mut *out, value).map(|()| writeln!(out)).map(|_| out.flush());
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
        self.line(&Event::exited(holder, ended));
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

    fn finish(&self, summary: &Summary, error: Option<&Error>) {
        if let Some(e) = error {
            stderr(&format!("error: {e}"));
        }
        self.line(&summary_line(summary));
    }
}
