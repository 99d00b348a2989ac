//! The KVM probe on this machine, whatever KVM does here: it answers in time
//! (a liveness property, not a speed target), and libvirt's choice of domain type
//! on the local QEMU host follows its answer.
//!
//! Run with `--nocapture` to see what the probe found and how long it took.

use std::path::Path;
use std::time::{Duration, Instant};

use basalt_server::compute::kvm_probe::{self, kvm_works, Probe, DEFAULT_TIMEOUT};
use basalt_server::compute::libvirt::{DomainTypeChoice, Libvirt};
use basalt_server::compute::{DomainSpec, Hypervisor};
use uuid::Uuid;
use virt::connect::Connect;

const QEMU: &str = "qemu:///system";

/// How long past its timeout the probe may take: kicking a stuck vCPU, thread
/// start-up, a loaded machine.
const GRACE: Duration = Duration::from_secs(1);

fn timed(timeout: Duration) -> (Probe, Duration) {
    let started = Instant::now();
    let probe = kvm_works(timeout);
    (probe, started.elapsed())
}

#[test]
fn the_probe_answers_within_its_timeout() {
    let (probe, took) = timed(DEFAULT_TIMEOUT);
    println!("KVM probe: {probe} ({probe:?}) after {took:.1?}");
    assert!(took <= DEFAULT_TIMEOUT + GRACE, "the probe took {took:?} with a timeout of {DEFAULT_TIMEOUT:?}");
    let has_kvm = Path::new("/dev/kvm").exists();
    match probe {
        Probe::Absent => assert!(!has_kvm, "Absent, yet /dev/kvm exists"),
        Probe::Works | Probe::Broken(_) | Probe::Hangs => assert!(has_kvm, "{probe}, yet there is no /dev/kvm"),
    }
}

/// A timeout too short for any guest takes the timeout path (stop, kick, give up
/// on the thread) wherever /dev/kvm exists, and still answers in time.
#[test]
fn a_probe_cut_short_answers_in_time_too() {
    let (probe, took) = timed(Duration::ZERO);
    println!("KVM probe with no time at all: {probe} after {took:.1?}");
    assert!(took <= GRACE, "the probe took {took:?} with a timeout of zero");
}

/// A domain defined on the local QEMU host is `kvm` exactly when the probe works
/// (and the host lists kvm at all), `qemu` otherwise. Defined and undefined,
/// never started. libvirtd must run (`scripts/setup` starts it): no skip.
#[test]
fn the_local_domain_type_follows_the_probe() {
    let conn = match Connect::open(Some(QEMU)) {
        Ok(conn) => conn,
        Err(e) => panic!("{QEMU} is not reachable ({}); run scripts/setup", e.message()),
    };
    let lists_kvm = conn.capabilities().expect("capabilities").contains("<domain type='kvm'");
    let started = Instant::now();
    let probe = kvm_probe::local_kvm();
    println!("local KVM probe: {probe} after {:.1?}; capabilities list kvm: {lists_kvm}", started.elapsed());
    let want = if probe.works() && lists_kvm { "kvm" } else { "qemu" };

    let hv = Libvirt::with_domain_type(DomainTypeChoice::Detect);
    let id = Uuid::new_v4();
    let spec = DomainSpec::new(id, 1, 128);
    hv.define(QEMU, &spec).expect("define");
    let _undefine = Undefine { hv: &hv, id };
    let xml = conn.lookup_domain_by_uuid(id).and_then(|d| d.xml_desc(0)).expect("xml");
    assert!(xml.starts_with(&format!("<domain type='{want}'")), "probe {probe}, want {want}:\n{xml}");
}

/// Undefines the test's domain however the test ends.
struct Undefine<'a> {
    hv: &'a Libvirt,
    id: Uuid,
}

impl Drop for Undefine<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.hv.undefine(QEMU, self.id) {
            eprintln!("undefining {}: {e}", self.id);
        }
    }
}
