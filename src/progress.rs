//! Showing long work: a progress bar on a terminal, a plain line every so often when piped
//! (batch jobs, log files), and [`LogFn`], where a library's progress lines go (stderr for a
//! command, log events inside the engine, whose thread must never draw).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Where progress lines go.
pub type LogFn<'a> = &'a dyn Fn(&str);

/// A progress display for long work: a bar on a terminal, a plain line every `line_every` when
/// piped (batch jobs, log files).
pub struct Progress {
    bar: Option<ProgressBar>,
    line_every: Duration,
    last_line: Instant,
    label: String,
}

impl Progress {
    pub fn new(label: &str, start: u64, total: u64, line_every: Duration) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total).with_position(start);
            b.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress { bar, line_every, last_line: Instant::now() - line_every, label: label.to_string() }
    }

    /// Reports `pos` of `total` with a status message (shown on the bar, or as a paced line).
    pub fn update(&mut self, pos: u64, total: u64, msg: &str) {
        match &self.bar {
            Some(b) => {
                b.set_position(pos);
                b.set_message(msg.to_string());
            }
            None if self.last_line.elapsed() >= self.line_every || pos == total => {
                self.last_line = Instant::now();
                eprintln!("{} step {pos}/{total} {msg}", self.label);
            }
            None => {}
        }
    }

    /// A line that does not disturb the bar.
    pub fn println(&self, msg: impl AsRef<str>) {
        match &self.bar {
            Some(b) => b.println(msg.as_ref()),
            None => eprintln!("{}", msg.as_ref()),
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    pub fn abandon(&mut self) {
        if let Some(b) = self.bar.take() {
            b.abandon();
        }
    }
}
