//! How long do the hypervisor's basic moves take? Three figures, through the libvirt
//! [`Hypervisor`] exactly as Basalt calls it:
//!
//! * **define + start → running on `test:///default`** — libvirt's in-process test
//!   driver: the cost of Basalt's side of the calls (XML, connection, lookups) with
//!   no hypervisor behind it. Median of 50.
//! * **start → first console line on QEMU (TCG)** — the tiny guest
//!   (`scripts/tiny-guest`: Debian's kernel, a busybox initramfs, `quiet`) on
//!   `qemu:///system`, timed from the `start` call to the first complete line on
//!   its serial console (its init's boot line), and to its first `tick`. Median of 3.
//! * **live migration** — the same guest, running, moved between `qemu:///system`
//!   and the second host of `scripts/second-libvirtd`
//!   (`qemu+tcp://127.0.0.1:16510/system`), there and back and there again; each
//!   `migrate` call timed. Median of 3.
//!
//! Run as root on a machine prepared by `scripts/setup`:
//! `cargo bench -p basalt-server --bench compute_latency`. Guests are TCG
//! (`Libvirt::new()` gives the local host KVM only when the KVM probe passes,
//! which it does not on the machines these figures come from; set
//! `BASALT_DOMAIN_TYPE=qemu` to be sure elsewhere), one vCPU and 256 MiB.

#[path = "../tests/guest/mod.rs"]
mod guest;

use std::time::{Duration, Instant};

use basalt_server::compute::libvirt::Libvirt;
use basalt_server::compute::{DomainPower, DomainSpec, Hypervisor};
use guest::{Cleanup, ConsoleLines, FIRST};
use uuid::Uuid;

const TEST: &str = "test:///default";
const TEST_RUNS: usize = 50;
const QEMU_RUNS: usize = 3;
const MIGRATIONS: usize = 3;
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

fn main() {
    let hv = Libvirt::new();
    guest::require_host(&hv, TEST);
    guest::require_host(&hv, FIRST);

    eprintln!("define + start on {TEST} ({TEST_RUNS} runs)...");
    let test_driver = test_driver_start(&hv);
    let kernel = guest::tiny_guest();
    eprintln!("booting the tiny guest on {FIRST} ({QEMU_RUNS} runs)...");
    let (first_line, first_tick) = qemu_boot(&hv, &kernel);
    let second = guest::second_host();
    guest::require_host(&hv, second);
    eprintln!("live migrations between {FIRST} and {second} ({MIGRATIONS})...");
    let migrations = live_migrations(&hv, &kernel, second);

    println!();
    println!("{:<52} {:>10} {:>10} {:>10} {:>5}", "what", "median", "min", "max", "runs");
    for (what, samples) in [
        (format!("define + start -> running, {TEST}"), &test_driver),
        ("start -> first console line, QEMU TCG tiny guest".to_owned(), &first_line),
        ("start -> `tick 1`, QEMU TCG tiny guest".to_owned(), &first_tick),
        ("live migration (migrate call), TCG, 256 MiB".to_owned(), &migrations),
    ] {
        let (median, min, max) = stats(samples);
        println!("{what:<52} {:>10} {:>10} {:>10} {:>5}", fmt(median), fmt(min), fmt(max), samples.len());
    }
    println!();
    println!("reproduce: cargo bench -p basalt-server --bench compute_latency");
    println!("(as root, after scripts/setup; the second host stays up: scripts/second-libvirtd stop)");
}

/// define + start until `power` says Running, on the test driver.
fn test_driver_start(hv: &Libvirt) -> Vec<Duration> {
    (0..TEST_RUNS)
        .map(|_| {
            let id = Uuid::new_v4();
            let spec = DomainSpec::new(id, 1, 256);
            let t0 = Instant::now();
            hv.define(TEST, &spec).expect("define");
            hv.start(TEST, id).expect("start");
            assert_eq!(hv.power(TEST, id), Ok(Some(DomainPower::Running)));
            let took = t0.elapsed();
            hv.undefine(TEST, id).expect("undefine");
            took
        })
        .collect()
}

/// start → first console line, and start → `tick 1`, for fresh tiny guests.
fn qemu_boot(hv: &Libvirt, kernel: &basalt_server::compute::KernelBoot) -> (Vec<Duration>, Vec<Duration>) {
    let mut first_line = Vec::new();
    let mut first_tick = Vec::new();
    for _ in 0..QEMU_RUNS {
        let id = Uuid::new_v4();
        let _cleanup = Cleanup { hv, id, hosts: vec![FIRST] };
        hv.define(FIRST, &guest::spec(id, kernel)).expect("define");
        let t0 = Instant::now();
        hv.start(FIRST, id).expect("start");
        let mut console = ConsoleLines::open(hv, FIRST, id);
        let deadline = t0 + BOOT_TIMEOUT;
        // The console opens a few milliseconds after start; the guest's first
        // line comes seconds later, so none is missed.
        loop {
            let line = console
                .next_line(deadline)
                .unwrap_or_else(|| panic!("no console output within {BOOT_TIMEOUT:?}:\n{}", console.transcript()));
            if !line.trim().is_empty() {
                first_line.push(t0.elapsed());
                break;
            }
        }
        console.wait_for_tick(1, deadline.saturating_duration_since(Instant::now()));
        first_tick.push(t0.elapsed());
    }
    (first_line, first_tick)
}

/// One running guest moved first → second → first → ...; each migrate call timed.
fn live_migrations(hv: &Libvirt, kernel: &basalt_server::compute::KernelBoot, second: &'static str) -> Vec<Duration> {
    let id = Uuid::new_v4();
    let _cleanup = Cleanup { hv, id, hosts: vec![FIRST, second] };
    hv.define(FIRST, &guest::spec(id, kernel)).expect("define");
    hv.start(FIRST, id).expect("start");
    ConsoleLines::open(hv, FIRST, id).wait_for_tick(1, BOOT_TIMEOUT);
    let mut took = Vec::new();
    let (mut from, mut to) = (FIRST, second);
    for _ in 0..MIGRATIONS {
        let t0 = Instant::now();
        hv.migrate(from, to, id, true).unwrap_or_else(|e| panic!("migrate {from} -> {to}: {e}"));
        let d = t0.elapsed();
        assert_eq!(hv.power(to, id), Ok(Some(DomainPower::Running)), "running on {to}");
        assert_eq!(hv.power(from, id), Ok(None), "gone from {from}");
        eprintln!("  {from} -> {to}: {}", fmt(d));
        took.push(d);
        std::mem::swap(&mut from, &mut to);
    }
    took
}

fn stats(samples: &[Duration]) -> (Duration, Duration, Duration) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let n = sorted.len();
    let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2 };
    (median, sorted[0], sorted[n - 1])
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else if d < Duration::from_secs(1) {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}
