//! Real QEMU guests (TCG, no mocks) through the libvirt [`Hypervisor`]: the tiny
//! guest (`scripts/tiny-guest`: Debian's kernel and a busybox initramfs that
//! prints `tick N` every second) boots on `qemu:///system`, and moves live to a
//! second libvirt host on the same machine (`scripts/second-libvirtd`) without
//! missing a beat.
//!
//! These tests never skip: without libvirtd and QEMU they fail and say so
//! (`scripts/setup` installs and starts them, as CI does).

mod guest;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use basalt_server::compute::libvirt::Libvirt;
use basalt_server::compute::{DomainPower, Hypervisor};
use guest::{Cleanup, ConsoleLines, FIRST};
use uuid::Uuid;

/// TCG guests are slow to boot on two cores: one guest at a time keeps the
/// timeouts honest when the test harness runs these in parallel.
static ONE_GUEST_AT_A_TIME: Mutex<()> = Mutex::new(());

const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn a_tiny_guest_boots_and_ticks_on_the_serial_console() {
    let _one = ONE_GUEST_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let hv = Libvirt::new();
    guest::require_host(&hv, FIRST);
    let kernel = guest::tiny_guest();
    let id = Uuid::new_v4();
    let _cleanup = Cleanup { hv: &hv, id, hosts: vec![FIRST] };

    hv.define(FIRST, &guest::spec(id, &kernel)).expect("define");
    let started = Instant::now();
    hv.start(FIRST, id).expect("start");
    assert_eq!(hv.power(FIRST, id), Ok(Some(DomainPower::Running)));

    let mut console = ConsoleLines::open(&hv, FIRST, id);
    let tick = console.wait_for_tick(3, BOOT_TIMEOUT);
    println!("tick {tick} after {:.1?} ({} console lines)", started.elapsed(), console.lines.len());
    assert!(
        console.lines.iter().any(|l| l.contains("basalt tiny guest: booted")),
        "the boot line came first:\n{}",
        console.transcript()
    );
}

#[test]
fn a_running_guest_keeps_ticking_across_a_live_migration() {
    let _one = ONE_GUEST_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let hv = Libvirt::new();
    guest::require_host(&hv, FIRST);
    let second = guest::second_host();
    guest::require_host(&hv, second);
    let kernel = guest::tiny_guest();
    let id = Uuid::new_v4();
    let _cleanup = Cleanup { hv: &hv, id, hosts: vec![FIRST, second] };

    hv.define(FIRST, &guest::spec(id, &kernel)).expect("define");
    hv.start(FIRST, id).expect("start");
    let mut before = ConsoleLines::open(&hv, FIRST, id);
    let last_before = before.wait_for_tick(2, BOOT_TIMEOUT);

    let moving = Instant::now();
    hv.migrate(FIRST, second, id, true).expect("live migration to the second host");
    let took = moving.elapsed();
    println!("live migration {FIRST} -> {second}: {took:.2?} (last tick before: {last_before})");

    assert_eq!(hv.power(second, id), Ok(Some(DomainPower::Running)), "running on the destination");
    assert_eq!(hv.power(FIRST, id), Ok(None), "gone from the source (its definition too)");
    // Its reader thread ends with the source's QEMU, which ended the stream.
    drop(before);

    let mut after = ConsoleLines::open(&hv, second, id);
    let first_after = after
        .next_tick(Instant::now() + Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no tick on the destination's console:\n{}", after.transcript()));
    println!("first tick on the destination: {first_after}");
    // A rebooted guest would count from 1 again (and print its boot line first).
    assert!(
        first_after > last_before,
        "the guest counts on from {last_before} where it left off, got tick {first_after}:\n{}",
        after.transcript()
    );
    assert!(!after.lines.iter().any(|l| l.contains("booted")), "the guest did not boot again:\n{}", after.transcript());
    let later = after.wait_for_tick(first_after + 1, Duration::from_secs(30));
    assert!(later > first_after);
}
