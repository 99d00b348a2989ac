//! The libvirt [`Hypervisor`] against real libvirt: the test driver
//! (`test:///default`, in-process, shared by every test here, hence a fresh UUID
//! per test) for behaviour, and the QEMU driver (`qemu:///system`, when libvirtd
//! runs) to prove the QEMU domain XML passes its validation.

use basalt_server::compute::libvirt::{DomainTypeChoice, Libvirt};
use basalt_server::compute::{Device, DomainPower, DomainSpec, HvError, Hypervisor, KernelBoot};
use uuid::Uuid;
use virt::connect::Connect;

const TEST: &str = "test:///default";
const QEMU: &str = "qemu:///system";

/// TCG on QEMU hosts, whatever the environment says and KVM can do.
fn hv() -> Libvirt {
    Libvirt::with_domain_type(DomainTypeChoice::Qemu)
}

fn spec(id: Uuid) -> DomainSpec {
    DomainSpec::new(id, 1, 256)
}

fn defined(hv: &Libvirt) -> DomainSpec {
    let spec = spec(Uuid::new_v4());
    hv.define(TEST, &spec).expect("define");
    spec
}

/// What libvirt itself reports: (vCPUs, max memory KiB, current memory KiB) of the
/// persistent config, read over a connection of the test's own.
fn config_of(uri: &str, id: Uuid) -> (u32, u64, u64) {
    let conn = Connect::open(Some(uri)).expect("open");
    let dom = conn.lookup_domain_by_uuid(id).expect("lookup");
    let xml = dom.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE).expect("xml");
    let field = |open: &str| -> u64 {
        let start = xml.find(open).unwrap_or_else(|| panic!("{open} in {xml}"));
        let rest = &xml[start..];
        let value = &rest[rest.find('>').expect(">") + 1..rest.find("</").expect("</")];
        value.trim().parse().unwrap_or_else(|_| panic!("{open}: {value}"))
    };
    (field("<vcpu") as u32, field("<memory"), field("<currentMemory"))
}

fn live_of(uri: &str, id: Uuid) -> virt::domain::DomainInfo {
    let conn = Connect::open(Some(uri)).expect("open");
    conn.lookup_domain_by_uuid(id).expect("lookup").info().expect("info")
}

#[test]
fn lifecycle_walks_every_power_state() {
    let hv = hv();
    let spec = defined(&hv);
    let id = spec.id;
    assert_eq!(hv.power(TEST, id), Ok(Some(DomainPower::Off)));

    hv.start(TEST, id).expect("start");
    assert_eq!(hv.power(TEST, id), Ok(Some(DomainPower::Running)));
    let again = hv.start(TEST, id);
    assert!(matches!(again, Err(HvError::InvalidState(_))), "starting a running domain: {again:?}");

    hv.suspend(TEST, id).expect("suspend");
    assert_eq!(hv.power(TEST, id), Ok(Some(DomainPower::Paused)));
    hv.suspend(TEST, id).expect("suspending a paused domain is done already");
    hv.resume(TEST, id).expect("resume");
    assert_eq!(hv.power(TEST, id), Ok(Some(DomainPower::Running)));
    hv.resume(TEST, id).expect("resuming a running domain is done already");

    hv.reboot(TEST, id).expect("reboot");
    assert_eq!(hv.power(TEST, id), Ok(Some(DomainPower::Running)));

    // The test driver has no guest to wait for: an ACPI shutdown is immediate.
    hv.shutdown(TEST, id).expect("shutdown");
    assert_eq!(hv.power(TEST, id), Ok(Some(DomainPower::Off)));
    for (what, result) in [
        ("shutdown", hv.shutdown(TEST, id)),
        ("reboot", hv.reboot(TEST, id)),
        ("suspend", hv.suspend(TEST, id)),
        ("resume", hv.resume(TEST, id)),
    ] {
        assert!(matches!(result, Err(HvError::InvalidState(_))), "{what} of an off domain: {result:?}");
    }

    hv.start(TEST, id).expect("start again");
    hv.destroy(TEST, id).expect("destroy");
    assert_eq!(hv.power(TEST, id), Ok(Some(DomainPower::Off)));
    hv.destroy(TEST, id).expect("destroying an off domain is done already");

    hv.undefine(TEST, id).expect("undefine");
}

#[test]
fn operations_on_an_unknown_domain_are_not_found() {
    let hv = hv();
    let id = Uuid::new_v4();
    assert_eq!(hv.power(TEST, id), Ok(None));
    for (what, result) in [
        ("start", hv.start(TEST, id)),
        ("shutdown", hv.shutdown(TEST, id)),
        ("destroy", hv.destroy(TEST, id)),
        ("suspend", hv.suspend(TEST, id)),
        ("resize", hv.resize(TEST, id, 1, 128, false)),
        ("snapshot_create", hv.snapshot_create(TEST, id, "s")),
        ("snapshot_delete", hv.snapshot_delete(TEST, id, "s")),
    ] {
        assert!(matches!(result, Err(HvError::NotFound(_))), "{what}: {result:?}");
    }
    assert!(matches!(hv.console(TEST, id), Err(HvError::NotFound(_))));
}

#[test]
fn define_replaces_the_config_of_an_existing_id() {
    let hv = hv();
    let mut spec = defined(&hv);
    spec.vcpus = 3;
    spec.memory_mib = 768;
    hv.define(TEST, &spec).expect("redefine");
    assert_eq!(config_of(TEST, spec.id), (3, 768 * 1024, 768 * 1024));
    hv.undefine(TEST, spec.id).expect("undefine");
}

#[test]
fn names_are_escaped_in_the_domain_xml() {
    let hv = hv();
    let id = Uuid::new_v4();
    let name = format!("basalt-{id}-a&b<c>'d\"");
    let mut spec = spec(id);
    spec.name = name.clone();
    spec.disk = Some(format!("/var/lib/basalt/{id}&<'>.qcow2").into());
    hv.define(TEST, &spec).expect("define");
    let conn = Connect::open(Some(TEST)).expect("open");
    let dom = conn.lookup_domain_by_uuid(id).expect("lookup");
    assert_eq!(dom.name().expect("name"), name);
    let xml = dom.xml_desc(0).expect("xml");
    assert!(xml.contains(&format!("/var/lib/basalt/{id}&amp;&lt;&apos;&gt;.qcow2")), "{xml}");
    hv.undefine(TEST, id).expect("undefine");
}

#[test]
fn resize_changes_the_config_and_the_running_domain_when_live() {
    let hv = hv();
    let spec = defined(&hv);
    let id = spec.id;

    hv.resize(TEST, id, 4, 1024, false).expect("grow config");
    assert_eq!(config_of(TEST, id), (4, 1024 * 1024, 1024 * 1024));
    hv.resize(TEST, id, 2, 512, false).expect("shrink config");
    assert_eq!(config_of(TEST, id), (2, 512 * 1024, 512 * 1024));
    // `live` on a domain that is not running only has a config to change.
    hv.resize(TEST, id, 3, 640, true).expect("live on an off domain");
    assert_eq!(config_of(TEST, id), (3, 640 * 1024, 640 * 1024));

    hv.start(TEST, id).expect("start");
    hv.resize(TEST, id, 2, 512, true).expect("shrink live");
    assert_eq!(config_of(TEST, id), (2, 512 * 1024, 512 * 1024));
    let live = live_of(TEST, id);
    assert_eq!((live.nr_virt_cpu, live.memory), (2, 512 * 1024));
    // Growing beyond what the running domain was started with is refused live;
    // the config still changes, and the caller decides about a restart.
    let grown = hv.resize(TEST, id, 8, 4096, true);
    assert!(grown.is_err(), "growing past the live maxima: {grown:?}");
    assert_eq!(config_of(TEST, id), (8, 4096 * 1024, 4096 * 1024));

    hv.undefine(TEST, id).expect("undefine");
}

#[test]
fn snapshots_are_created_reverted_and_deleted_idempotently() {
    let hv = hv();
    let spec = defined(&hv);
    let id = spec.id;
    hv.start(TEST, id).expect("start");

    hv.snapshot_create(TEST, id, "before").expect("create");
    hv.suspend(TEST, id).expect("suspend");
    assert_eq!(hv.power(TEST, id), Ok(Some(DomainPower::Paused)));
    hv.snapshot_revert(TEST, id, "before").expect("revert");
    assert_eq!(hv.power(TEST, id), Ok(Some(DomainPower::Running)), "reverted to the running snapshot");
    assert!(matches!(hv.snapshot_revert(TEST, id, "never"), Err(HvError::NotFound(_))));

    hv.snapshot_delete(TEST, id, "before").expect("delete");
    hv.snapshot_delete(TEST, id, "before").expect("deleting a deleted snapshot is done already");
    assert!(matches!(hv.snapshot_revert(TEST, id, "before"), Err(HvError::NotFound(_))));

    // Undefine takes remaining snapshot metadata with it, running or not.
    hv.snapshot_create(TEST, id, "left-behind").expect("create");
    hv.undefine(TEST, id).expect("undefine with a snapshot");
    assert_eq!(hv.power(TEST, id), Ok(None));
}

#[test]
fn domains_lists_only_basalt_domains() {
    let hv = hv();
    let spec = defined(&hv);
    hv.start(TEST, spec.id).expect("start");
    let conn = Connect::open(Some(TEST)).expect("open");
    assert!(conn.lookup_domain_by_name("test").is_ok(), "the test driver's own domain is there");

    let domains = hv.domains(TEST).expect("domains");
    assert!(domains.contains(&(spec.id, DomainPower::Running)), "{domains:?}");
    let test_domain = conn.lookup_domain_by_name("test").and_then(|d| d.uuid()).expect("uuid");
    assert!(domains.iter().all(|(id, _)| *id != test_domain), "{domains:?}");

    hv.undefine(TEST, spec.id).expect("undefine");
    assert!(!hv.domains(TEST).expect("domains").iter().any(|(id, _)| *id == spec.id));
}

#[test]
fn undefine_is_idempotent_and_stops_a_running_domain() {
    let hv = hv();
    let spec = defined(&hv);
    hv.start(TEST, spec.id).expect("start");
    hv.undefine(TEST, spec.id).expect("undefine a running domain");
    hv.undefine(TEST, spec.id).expect("undefine twice");
    assert_eq!(hv.power(TEST, spec.id), Ok(None));
}

#[test]
fn migrate_on_the_test_driver_is_unsupported() {
    let hv = hv();
    let spec = defined(&hv);
    let result = hv.migrate(TEST, "test:///default", spec.id, true);
    assert_eq!(result, Err(HvError::Unsupported("libvirt's test driver cannot migrate domains".into())));
    hv.undefine(TEST, spec.id).expect("undefine");
}

#[test]
fn console_on_the_test_driver() {
    let hv = hv();
    let spec = defined(&hv);
    hv.start(TEST, spec.id).expect("start");
    // The test driver has no console to open; the error says so.
    let console = hv.console(TEST, spec.id).map(|_| ());
    assert!(matches!(console, Err(HvError::Unsupported(_))), "{console:?}");
    hv.undefine(TEST, spec.id).expect("undefine");
}

#[test]
fn capacity_of_the_test_host() {
    // test:///default is a fixed fake host: 16 CPUs, 3 GiB.
    let cap = hv().capacity(TEST).expect("capacity");
    assert_eq!((cap.cpus, cap.memory_mib), (16, 3072));
}

#[test]
fn an_unreachable_host_is_unreachable() {
    let hv = hv();
    let uri = "qemu+tcp://127.0.0.1:1/system";
    match hv.capacity(uri) {
        Err(HvError::Unreachable { uri: u, message }) => {
            assert_eq!(u, uri);
            assert!(!message.is_empty());
        }
        other => panic!("capacity of a closed port: {other:?}"),
    }
    // Nothing is cached for a host that never answered: the next call tries again.
    assert!(matches!(hv.power(uri, Uuid::new_v4()), Err(HvError::Unreachable { .. })));
    assert!(matches!(hv.define(uri, &spec(Uuid::new_v4())), Err(HvError::Unreachable { .. })));
}

/// The QEMU driver validates what the test driver does not (machine type, disk
/// and console devices, direct kernel boot), so the XML is defined there too,
/// never started. libvirtd must run (`scripts/setup` starts it): no skip.
#[test]
fn qemu_driver_accepts_the_domain_xml() {
    if let Err(e) = Connect::open(Some(QEMU)) {
        panic!("{QEMU} is not reachable ({}); run scripts/setup", e.message());
    }
    let caps = Connect::open(Some(QEMU)).and_then(|c| c.capabilities()).expect("capabilities");
    let host_has_kvm = caps.contains("<domain type='kvm'");

    for (choice, want) in [(DomainTypeChoice::Qemu, "qemu"), (DomainTypeChoice::Kvm, "kvm")] {
        let hv = Libvirt::with_domain_type(choice);
        let want = if want == "kvm" && !host_has_kvm { "qemu" } else { want };
        let id = Uuid::new_v4();
        let spec = DomainSpec {
            disk: Some(format!("/var/lib/basalt/vms/{id}.qcow2").into()),
            kernel: Some(KernelBoot {
                kernel: "/var/lib/basalt/kernel/vmlinuz".into(),
                initrd: "/var/lib/basalt/kernel/initrd".into(),
                cmdline: "console=ttyS0 quiet".into(),
            }),
            ..spec(id)
        };
        hv.define(QEMU, &spec).expect("define on the QEMU driver");
        let xml = Connect::open(Some(QEMU))
            .and_then(|c| c.lookup_domain_by_uuid(id))
            .and_then(|d| d.xml_desc(0))
            .expect("xml");
        assert!(xml.contains(&format!("<domain type='{want}'")), "{xml}");
        assert_eq!(hv.power(QEMU, id), Ok(Some(DomainPower::Off)));
        assert!(hv.domains(QEMU).expect("domains").contains(&(id, DomainPower::Off)));
        hv.resize(QEMU, id, 2, 512, false).expect("grow the config");
        assert_eq!(config_of(QEMU, id), (2, 512 * 1024, 512 * 1024));
        hv.resize(QEMU, id, 1, 384, true).expect("shrink the config (`live` of an off domain)");
        assert_eq!(config_of(QEMU, id), (1, 384 * 1024, 384 * 1024));
        hv.snapshot_delete(QEMU, id, "none").expect("deleting a missing snapshot");
        // Devices go into the definition through attach-device (no redefinition here).
        let (nic, disk) = devices(id);
        assert_eq!(hv.attach_device(QEMU, id, &nic), Ok(false), "an off domain: from its next boot");
        assert_eq!(hv.attach_device(QEMU, id, &disk), Ok(false));
        let xml = inactive_xml(QEMU, id);
        assert!(
            xml.contains("<mac address='52:54:00:0a:0b:0c'/>") && xml.contains("<target dev='vdb' bus='virtio'/>"),
            "{xml}"
        );
        hv.detach_device(QEMU, id, &nic).expect("detach the NIC");
        hv.detach_device(QEMU, id, &disk).expect("detach the disk");
        hv.detach_device(QEMU, id, &nic).expect("a device that is not there is detached already");
        let xml = inactive_xml(QEMU, id);
        assert!(!xml.contains("52:54:00:0a:0b:0c") && !xml.contains("vdb"), "{xml}");
        hv.undefine(QEMU, id).expect("undefine");
        assert_eq!(hv.power(QEMU, id), Ok(None));
    }

    // A connection the daemon dropped (as on a libvirtd restart) is reopened by
    // the next call, which succeeds. Only this test talks to libvirtd, so every
    // connection of this process is its own.
    let hv = hv();
    let before = hv.capacity(QEMU).expect("capacity");
    assert!(disconnect_this_process_from_libvirtd() >= 1, "the cached connection was open");
    assert_eq!(hv.capacity(QEMU), Ok(before), "the lost connection is reopened");
    assert_eq!(hv.power(QEMU, Uuid::new_v4()), Ok(None));
}

/// A NIC and a data disk for domain `id`.
fn devices(id: Uuid) -> (Device, Device) {
    let disk = Device::Disk { path: format!("/var/lib/basalt/volumes/{id}.qcow2").into(), target: "vdb".into() };
    (Device::Nic { mac: "52:54:00:0a:0b:0c".into() }, disk)
}

fn inactive_xml(uri: &str, id: Uuid) -> String {
    let conn = Connect::open(Some(uri)).expect("open");
    conn.lookup_domain_by_uuid(id).and_then(|d| d.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)).expect("xml")
}

/// The test driver has no attach-device: the device is written into the
/// persistent definition instead, running or not, and taken out again.
#[test]
fn devices_reach_the_definition_on_the_test_driver() {
    let hv = hv();
    let spec = defined(&hv);
    let id = spec.id;
    hv.start(TEST, id).expect("start");
    let (nic, disk) = devices(id);
    assert_eq!(hv.attach_device(TEST, id, &nic), Ok(false), "no hot-plug: from the next boot");
    assert_eq!(hv.attach_device(TEST, id, &disk), Ok(false));
    let xml = inactive_xml(TEST, id);
    assert!(xml.contains("<mac address='52:54:00:0a:0b:0c'/>"), "{xml}");
    assert!(xml.contains(&format!("<source file='/var/lib/basalt/volumes/{id}.qcow2'/>")), "{xml}");
    assert_eq!(hv.power(TEST, id), Ok(Some(DomainPower::Running)), "the running domain carries on");
    hv.detach_device(TEST, id, &nic).expect("detach the NIC");
    let xml = inactive_xml(TEST, id);
    assert!(!xml.contains("52:54:00:0a:0b:0c") && xml.contains("/var/lib/basalt/volumes/"), "only the NIC left: {xml}");
    hv.detach_device(TEST, id, &disk).expect("detach the disk");
    hv.detach_device(TEST, id, &disk).expect("again: nothing to do");
    assert!(!inactive_xml(TEST, id).contains("/var/lib/basalt/volumes/"));
    let missing = hv.attach_device(TEST, Uuid::new_v4(), &nic);
    assert!(matches!(missing, Err(HvError::NotFound(_))), "{missing:?}");
    hv.undefine(TEST, id).expect("undefine");
}

/// Has libvirtd close every connection of this process (`virt-admin`, on the
/// daemon's admin socket); returns how many it closed.
fn disconnect_this_process_from_libvirtd() -> usize {
    let virt_admin = |args: &[&str]| -> String {
        let out = std::process::Command::new("virt-admin").args(args).output().expect("run virt-admin");
        assert!(out.status.success(), "virt-admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let pid = std::process::id().to_string();
    let clients = virt_admin(&["srv-clients-list", "libvirtd"]);
    let ours: Vec<String> = clients
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|id| id.chars().all(|c| c.is_ascii_digit()))
        .filter(|id| {
            virt_admin(&["client-info", "libvirtd", id]).lines().any(|line| {
                let mut kv = line.splitn(2, ':').map(str::trim);
                kv.next() == Some("unix_process_id") && kv.next() == Some(pid.as_str())
            })
        })
        .map(str::to_owned)
        .collect();
    for id in &ours {
        virt_admin(&["client-disconnect", "libvirtd", id]);
    }
    ours.len()
}

#[test]
fn metrics_and_reset_on_the_test_driver() {
    let hv = hv();
    let spec = defined(&hv);
    let id = spec.id;
    let off = hv.metrics(TEST, id).expect("metrics of a defined domain");
    assert_eq!((off.power, off.vcpus, off.max_memory_kib), (DomainPower::Off, 1, 256 * 1024));
    // Reset is for running domains only, like reboot.
    assert!(matches!(hv.reset(TEST, id), Err(HvError::InvalidState(_))));
    hv.start(TEST, id).expect("start");
    let on = hv.metrics(TEST, id).expect("metrics");
    assert_eq!((on.power, on.vcpus), (DomainPower::Running, 1));
    assert!(on.cpu_time_ns > 0, "{on:?}");
    hv.reset(TEST, id).expect("reset");
    assert_eq!(hv.power(TEST, id), Ok(Some(DomainPower::Running)));
    let missing = hv.metrics(TEST, Uuid::new_v4());
    assert!(matches!(missing, Err(HvError::NotFound(_))), "{missing:?}");
    hv.undefine(TEST, id).expect("undefine");
}
