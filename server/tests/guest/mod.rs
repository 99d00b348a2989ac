//! The tiny guest on real QEMU: building it (`scripts/tiny-guest`), the second
//! libvirt host (`scripts/second-libvirtd`), and reading its serial console.
//! Shared by `tests/qemu_guest.rs` and `benches/compute_latency.rs`.
//!
//! Nothing here skips: a machine without libvirtd or QEMU fails with a message
//! that says what is missing (`scripts/setup` installs and starts both).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use basalt_server::compute::libvirt::Libvirt;
use basalt_server::compute::{DomainSpec, Hypervisor, KernelBoot};
use uuid::Uuid;

/// The machine's own libvirtd, the first "host".
pub const FIRST: &str = "qemu:///system";
/// The second "host" that `scripts/second-libvirtd` starts.
pub const SECOND: &str = "qemu+tcp://127.0.0.1:16510/system";
/// The tiny guest's kernel command line: the serial port as the console, an
/// immediate reboot rather than a hang on panic, no boot chatter.
pub const CMDLINE: &str = "console=ttyS0 panic=-1 quiet";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the server crate is in the repo root").to_path_buf()
}

/// Runs one of the repo's scripts; its stdout, or a panic with everything it said.
pub fn script(name: &str, args: &[&str]) -> String {
    let path = repo_root().join("scripts").join(name);
    let out = Command::new("bash")
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "scripts/{name} {args:?} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Builds (or finds cached) the tiny guest: Debian's kernel and a busybox
/// initramfs that prints `tick N` on the serial console every second.
pub fn tiny_guest() -> KernelBoot {
    let out = script("tiny-guest", &[]);
    let find = |suffix: &str| -> PathBuf {
        out.lines()
            .map(str::trim)
            .find(|l| l.ends_with(suffix))
            .unwrap_or_else(|| panic!("scripts/tiny-guest printed no {suffix} path:\n{out}"))
            .into()
    };
    KernelBoot { kernel: find("/vmlinuz"), initrd: find("/initrd.gz"), cmdline: CMDLINE.to_owned() }
}

/// Starts the second libvirt host unless it runs already; returns its URI.
pub fn second_host() -> &'static str {
    let uri = script("second-libvirtd", &["start"]);
    assert_eq!(uri.trim(), SECOND, "scripts/second-libvirtd answers at another URI");
    SECOND
}

/// Fails (never skips) when the host does not answer: these tests need a real libvirtd.
pub fn require_host(hv: &Libvirt, uri: &str) {
    if let Err(e) = hv.capacity(uri) {
        panic!(
            "libvirt host {uri} is not reachable ({e}). These tests run real QEMU guests: \
             run scripts/setup (installs libvirt and QEMU, starts virtlogd and libvirtd)"
        );
    }
}

/// A 1-vCPU, 256 MiB diskless domain that boots `kernel` directly.
pub fn spec(id: Uuid, kernel: &KernelBoot) -> DomainSpec {
    DomainSpec { kernel: Some(kernel.clone()), ..DomainSpec::new(id, 1, 256) }
}

/// Destroys and undefines the domain on every host it may be on when dropped,
/// so that a failing test leaves no guest behind.
pub struct Cleanup<'a> {
    pub hv: &'a Libvirt,
    pub id: Uuid,
    pub hosts: Vec<&'static str>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for uri in &self.hosts {
            let _ = self.hv.destroy(uri, self.id);
            if let Err(e) = self.hv.undefine(uri, self.id) {
                eprintln!("cleanup: undefine {} on {uri}: {e}", self.id);
            }
        }
    }
}

/// A domain's serial console, read line by line on a thread of its own (reads block).
///
/// The thread ends when the stream does: when the domain stops or moves away.
/// A test that gives up waiting leaves it blocked until then (its guard destroys
/// the domain).
pub struct ConsoleLines {
    rx: Receiver<Option<Vec<u8>>>,
    partial: Vec<u8>,
    /// Every complete line so far (without the line end), for failure messages.
    pub lines: Vec<String>,
    ended: bool,
}

impl ConsoleLines {
    pub fn open(hv: &Libvirt, uri: &str, id: Uuid) -> ConsoleLines {
        let console = hv.console(uri, id).unwrap_or_else(|e| panic!("console of {id} on {uri}: {e}"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match console.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(None);
                        return;
                    }
                    Ok(n) => {
                        if tx.send(Some(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        ConsoleLines { rx, partial: Vec::new(), lines: Vec::new(), ended: false }
    }

    /// The next complete line, or `None` when the stream ended or `deadline` passed.
    pub fn next_line(&mut self, deadline: Instant) -> Option<String> {
        loop {
            if let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.partial.drain(..=end).collect();
                let line = String::from_utf8_lossy(&raw).trim_end_matches(['\r', '\n']).to_owned();
                self.lines.push(line.clone());
                return Some(line);
            }
            if self.ended {
                return None;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.rx.recv_timeout(left) {
                Ok(Some(chunk)) => self.partial.extend_from_slice(&chunk),
                Ok(None) | Err(RecvTimeoutError::Disconnected) => self.ended = true,
                Err(RecvTimeoutError::Timeout) => return None,
            }
        }
    }

    /// The number of the next `tick N` line, or `None` (ended, or out of time).
    pub fn next_tick(&mut self, deadline: Instant) -> Option<u64> {
        loop {
            let line = self.next_line(deadline)?;
            if let Some(n) = parse_tick(&line) {
                return Some(n);
            }
        }
    }

    /// Reads until a `tick N` with `N >= at_least`; returns that N. Panics with
    /// what the console said when it does not come within `timeout`.
    pub fn wait_for_tick(&mut self, at_least: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_tick(deadline) {
                Some(n) if n >= at_least => return n,
                Some(_) => {}
                None => panic!(
                    "no `tick {at_least}` on the console within {timeout:?} (stream {}); it said:\n{}",
                    if self.ended { "ended" } else { "still open" },
                    self.transcript()
                ),
            }
        }
    }

    /// The last lines seen, for failure messages.
    pub fn transcript(&self) -> String {
        let skip = self.lines.len().saturating_sub(40);
        let mut out = self.lines[skip..].join("\n");
        if !self.partial.is_empty() {
            out.push('\n');
            out.push_str(&String::from_utf8_lossy(&self.partial));
        }
        out
    }
}

/// `tick 17` → 17. A line that starts mid-way (the console opened while the
/// guest was writing it) never parses: it cannot start with `tick `.
pub fn parse_tick(line: &str) -> Option<u64> {
    line.trim().strip_prefix("tick ")?.trim().parse().ok()
}
