//! The training thread: takes `Command`s, emits `Event`s over crossbeam channels, runs a queue
//! of runs. The UI and the headless reporter consume it; it knows nothing about either.

pub mod eval;
pub mod events;
pub mod losses;
pub mod probe;
pub mod run;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TrySendError};

pub use events::{Command, Event, RunRequest};

use crate::paths::Paths;

/// Capacity of the event channel; step events are dropped (coalesced) when it is full, so a
/// slow consumer never stalls training.
pub const EVENT_CAPACITY: usize = 256;

pub struct EngineHandle {
    pub commands: Sender<Command>,
    pub events: Receiver<Event>,
    pub join: JoinHandle<()>,
}

/// Sends events without ever blocking the engine on step updates.
#[derive(Clone)]
pub struct Emitter {
    tx: Sender<Event>,
}

impl Emitter {
    pub fn emit(&self, event: Event) {
        match event {
            // Latest-wins: a dropped step event is superseded by the next one.
            Event::Step { .. } => match self.tx.try_send(event) {
                Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
            },
            other => {
                let _ = self.tx.send(other);
            }
        }
    }
}

/// Starts the engine thread on `device`. It exits on `Quit`, or when the command channel is
/// closed and its queue is empty.
pub fn spawn(paths: Paths, device: candle_core::Device) -> EngineHandle {
    let (cmd_tx, cmd_rx) = unbounded::<Command>();
    let (ev_tx, ev_rx) = bounded::<Event>(EVENT_CAPACITY);
    let join = std::thread::Builder::new()
        .name("ayt-engine".into())
        .spawn(move || engine_loop(paths, device, cmd_rx, Emitter { tx: ev_tx }))
        .expect("spawning the engine thread");
    EngineHandle { commands: cmd_tx, events: ev_rx, join }
}

fn engine_loop(paths: Paths, device: candle_core::Device, commands: Receiver<Command>, emitter: Emitter) {
    let mut queue: VecDeque<RunRequest> = VecDeque::new();
    loop {
        let request = match queue.pop_front() {
            Some(r) => r,
            None => match commands.recv() {
                Ok(Command::Start(r)) => r,
                Ok(Command::Quit) | Err(_) => return,
                Ok(_) => continue, // run controls with no run: nothing to do
            },
        };
        let mut control = run::Control { commands: &commands, queue: &mut queue, emitter: &emitter, quit: false };
        let run_dir: Option<PathBuf> = match &request {
            RunRequest::Resume { run_dir } => Some(run_dir.clone()),
            RunRequest::New { .. } => None,
        };
        if let Err(e) = run::execute(&paths, &device, request, &mut control) {
            emitter.emit(Event::Failed { run_dir, error: e.to_string() });
        }
        if control.quit {
            return;
        }
    }
}
