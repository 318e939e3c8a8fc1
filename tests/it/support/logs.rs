//! Log capture: one global `tracing` subscriber for the whole test binary, writing every event
//! (down to TRACE) into one buffer that tests read.
//!
//! Global, not thread-local: a thread-local subscriber can miss events whose callsite interest
//! another test thread cached while no subscriber was set. Every test that logs writes into the
//! same buffer, which only widens checks such as "no token ever appears in the logs"; a test
//! that looks for a line of its own searches for text only it produces.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// A `MakeWriter` target that keeps every log line.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capture (once per binary) and returns it.
pub fn capture() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = LogBuffer::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        logs
    })
}

/// Everything logged so far by any test of this binary.
pub fn text() -> String {
    String::from_utf8_lossy(&capture().0.lock().unwrap()).into_owned()
}
