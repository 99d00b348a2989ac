//! The [`Hypervisor`] implementation over libvirt (crate `virt`): this file owns
//! the connections to hosts, the domain XML Basalt defines, and the translation of
//! libvirt's errors into [`HvError`].
//!
//! * **Connections.** One `virConnect` per host URI, opened on first use and kept.
//!   libvirt connections are thread-safe, so callers share it; a call that fails
//!   because the connection died (daemon restarted, socket closed) drops it, opens
//!   a new one and is retried once. A host whose connection cannot be opened is
//!   [`HvError::Unreachable`].
//! * **Domains** are found by UUID, which is the VM's id; only domains named
//!   `basalt-…` are Basalt's (libvirt's test driver, for one, ships a `test`
//!   domain of its own).
//! * **Domain type.** `test://` hosts get `test` domains. QEMU hosts get `kvm`
//!   only where KVM is known to work, `qemu` (TCG, pure emulation, slow but it
//!   works wherever QEMU does) everywhere else; a host can have `/dev/kvm` and
//!   advertise `kvm` and still hang its guests under it (the machines Basalt is
//!   developed and tested on do exactly that), so advertising is not enough:
//!   - *Local hosts* (no host in the URI: `qemu:///system`, `qemu:///session`,
//!     `qemu+unix:///system`) are this machine, where [`kvm_probe::local_kvm`]
//!     runs a small guest on `/dev/kvm` once per process (the first define waits
//!     for it, 2 s at most): `kvm` when the host's capabilities list a `kvm`
//!     domain type *and* that guest ran at hardware speed, `qemu` otherwise.
//!   - *Remote hosts* (a host in the URI, even `127.0.0.1`: it is reached over
//!     the network and may be another machine or a namespace of this one) get
//!     `qemu` unless the operator opts into KVM. The probe cannot be run there
//!     from here: it needs `/dev/kvm` in the process, and libvirt has no call that
//!     runs a guest and says whether it got anywhere short of booting a real one.
//!   - `BASALT_DOMAIN_TYPE` overrides all of it for every QEMU host: `qemu` forces
//!     TCG; `kvm` gives `kvm` wherever the capabilities list it, without a probe
//!     (the capability check only keeps a KVM-less host of a KVM deployment working).
//!
//!   The first decision for each host, and any later change, is logged at info
//!   level with its reason and the probe's answer.
//! * **Devices added later** (NICs, data volumes: [`Hypervisor::attach_device`])
//!   go into the persistent definition and, when the domain runs, into the running
//!   domain (hot-plug). A driver without hot-plug (libvirt's test driver answers
//!   `VIR_ERR_NO_SUPPORT` to attach-device) gets the device by a redefinition of
//!   its persistent XML with the device added or removed: the running domain
//!   has it from its next boot.
//! * **Errors.** libvirt's message is kept as is (it is for logs, see [`HvError`]);
//!   its error code decides the variant (see [`map_err`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::{env, fmt};

use uuid::Uuid;
use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::error::{Error as VirtError, ErrorDomain, ErrorNumber};
use virt::stream::Stream;
use virt::sys;

use super::hypervisor::{
    ConsoleStream, Device, DomainMetrics, DomainPower, DomainSpec, HostCapacity, HvError, Hypervisor,
};
use super::kvm_probe::{self, Probe};

/// Domains Basalt defines are named with this prefix; everything else on a host
/// is someone else's and invisible to [`Hypervisor::domains`].
const NAME_PREFIX: &str = "basalt-";

/// The environment variable that overrides the choice of domain type (see the module doc).
pub const DOMAIN_TYPE_ENV: &str = "BASALT_DOMAIN_TYPE";

/// How QEMU hosts get their domain type (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DomainTypeChoice {
    /// Local hosts: `kvm` when their capabilities list it and the local KVM
    /// probe ran its guest; remote hosts: `qemu`. The default.
    #[default]
    Detect,
    /// `qemu` (TCG) on every host: `BASALT_DOMAIN_TYPE=qemu`.
    Qemu,
    /// `kvm` on every host whose capabilities list it, unprobed: `BASALT_DOMAIN_TYPE=kvm`.
    Kvm,
}

/// One host's connection, shared by every call to that host. The slot's own lock
/// is held only while (re)opening, so one slow or dead host never blocks calls to
/// the others, and concurrent first calls to a host open one connection, not many.
type Slot = Arc<Mutex<Option<Arc<Connect>>>>;

/// libvirt behind the [`Hypervisor`] trait.
pub struct Libvirt {
    hosts: Mutex<HashMap<String, Slot>>,
    choice: DomainTypeChoice,
    /// The last domain type chosen for each host, so that the choice is logged
    /// when it is first made and when it changes, not on every define.
    chosen: Mutex<HashMap<String, DomainType>>,
}

impl Default for Libvirt {
    fn default() -> Self {
        Self::new()
    }
}

impl Libvirt {
    /// Reads the choice of domain type from `BASALT_DOMAIN_TYPE`: `kvm` or `qemu`
    /// force it; unset, empty or anything else (with a warning) means detection.
    pub fn new() -> Self {
        let choice = match env::var(DOMAIN_TYPE_ENV) {
            Ok(v) if v == "kvm" => DomainTypeChoice::Kvm,
            Ok(v) if v == "qemu" => DomainTypeChoice::Qemu,
            Ok(v) if v.is_empty() => DomainTypeChoice::Detect,
            Ok(v) => {
                tracing::warn!(value = %v, "{DOMAIN_TYPE_ENV} is neither kvm nor qemu; detecting the domain type");
                DomainTypeChoice::Detect
            }
            Err(_) => DomainTypeChoice::Detect,
        };
        Self::with_domain_type(choice)
    }

    /// As [`Libvirt::new`], with the choice of domain type given rather than read
    /// from the environment.
    pub fn with_domain_type(choice: DomainTypeChoice) -> Self {
        silence_libvirt_error_printer();
        Self { hosts: Mutex::new(HashMap::new()), choice, chosen: Mutex::new(HashMap::new()) }
    }

    fn slot(&self, uri: &str) -> Slot {
        lock(&self.hosts).entry(uri.to_owned()).or_default().clone()
    }

    /// The host's live connection, opening one when there is none or the cached
    /// one has died. `is_alive` is a local check of the transport, not a round trip.
    fn connect(&self, uri: &str) -> Result<Arc<Connect>, HvError> {
        let slot = self.slot(uri);
        let mut cached = lock(&slot);
        if let Some(conn) = cached.as_ref() {
            if matches!(conn.is_alive(), Ok(true)) {
                return Ok(conn.clone());
            }
        }
        // Dropping our reference to a dead connection closes it once the calls
        // still holding it are done.
        *cached = None;
        let conn = Connect::open(Some(uri))
            .map_err(|e| HvError::Unreachable { uri: uri.to_owned(), message: e.message().to_owned() })?;
        let conn = Arc::new(conn);
        *cached = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets `dead` as the host's connection (unless another caller already replaced it).
    fn forget(&self, uri: &str, dead: &Arc<Connect>) {
        let slot = self.slot(uri);
        let mut cached = lock(&slot);
        if cached.as_ref().is_some_and(|c| Arc::ptr_eq(c, dead)) {
            *cached = None;
        }
    }

    /// Runs `f` on the host's connection; when it fails because the connection is
    /// gone, reconnects and runs it once more. The retry may repeat an operation
    /// that reached the host before the connection broke: the second attempt then
    /// fails with the state error (e.g. "already running"), which is the truth.
    fn with_conn<T>(&self, uri: &str, f: impl Fn(&Connect) -> Result<T, VirtError>) -> Result<T, HvError> {
        let conn = self.connect(uri)?;
        match f(&conn) {
            Ok(v) => Ok(v),
            Err(e) if connection_lost(&conn, &e) => {
                self.forget(uri, &conn);
                drop(conn);
                let conn = self.connect(uri)?;
                f(&conn).map_err(|e| {
                    if connection_lost(&conn, &e) {
                        self.forget(uri, &conn);
                    }
                    map_err(uri, e)
                })
            }
            Err(e) => Err(map_err(uri, e)),
        }
    }

    /// Runs `f` on the domain `id` of the host `uri`.
    fn with_domain<T>(&self, uri: &str, id: Uuid, f: impl Fn(&Domain) -> Result<T, VirtError>) -> Result<T, HvError> {
        self.with_conn(uri, |conn| f(&conn.lookup_domain_by_uuid(id)?))
    }

    /// Runs `op` on the domain unless `refuse` names a reason not to, which becomes
    /// [`HvError::InvalidState`]. The state is checked here, not left to libvirt,
    /// because drivers disagree on the error: QEMU says operation-invalid, the test
    /// driver an internal error, for the same "already running" or "not running".
    fn with_domain_in_state(
        &self,
        uri: &str,
        id: Uuid,
        refuse: fn(&Domain) -> Result<Option<&'static str>, VirtError>,
        op: impl Fn(&Domain) -> Result<(), VirtError>,
    ) -> Result<(), HvError> {
        let refused = self.with_domain(uri, id, |dom| match refuse(dom)? {
            Some(why) => Ok(Some(why)),
            None => op(dom).map(|()| None),
        })?;
        match refused {
            None => Ok(()),
            Some(why) => Err(HvError::InvalidState(why.to_owned())),
        }
    }

    /// Adds (`attach`) or removes a device: hot-plugged and persistent where the
    /// driver can, else by redefining the persistent XML (see the module doc).
    /// One change at a time in this process, so two redefinitions of a domain
    /// never lose each other's device.
    fn change_device(&self, uri: &str, id: Uuid, device: &Device, attach: bool) -> Result<bool, HvError> {
        static CHANGING: Mutex<()> = Mutex::new(());
        let xml = device_xml(device)?;
        let _one = lock(&CHANGING);
        self.with_conn(uri, |conn| {
            let dom = conn.lookup_domain_by_uuid(id)?;
            let live = dom.is_active()?;
            let flags = sys::VIR_DOMAIN_AFFECT_CONFIG | if live { sys::VIR_DOMAIN_AFFECT_LIVE } else { 0 };
            let done = if attach { dom.attach_device_flags(&xml, flags) } else { dom.detach_device_flags(&xml, flags) };
            match done {
                Ok(()) => Ok(live),
                Err(e) if !attach && is_code(&e, ErrorNumber::DeviceMissing) => Ok(live),
                Err(e) if is_code(&e, ErrorNumber::NoSupport) => {
                    let current = dom.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE)?;
                    let edited = if attach { with_device(&current, &xml) } else { without_device(&current, device) };
                    if edited != current {
                        conn.define_domain_xml(&edited)?;
                    }
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })
    }

    /// The domain type to define on this host (see the module doc).
    fn domain_type(&self, uri: &str, conn: &Connect) -> Result<DomainType, VirtError> {
        if is_test_uri(uri) {
            return Ok(DomainType::Test);
        }
        let local = is_local_uri(uri);
        // Capabilities list each guest arch's domain types as `<domain type='kvm'/>`
        // (libvirt always writes single quotes); a substring test is enough here.
        let lists_kvm = || conn.capabilities().map(|caps| caps.contains("<domain type='kvm'"));
        let decision = decide(self.choice, local, lists_kvm, kvm_probe::local_kvm)?;
        let previous = lock(&self.chosen).insert(uri.to_owned(), decision.kind);
        if previous != Some(decision.kind) {
            let probe = decision.probe.map_or_else(|| "not run".to_owned(), Probe::to_string);
            tracing::info!(uri, local, domain_type = %decision.kind, %probe, "domain type: {}", decision.reason);
        }
        Ok(decision.kind)
    }
}

/// A domain type for a QEMU host, and why.
#[derive(Debug)]
struct Decision {
    kind: DomainType,
    reason: &'static str,
    /// The local probe's answer, when it was asked.
    probe: Option<&'static Probe>,
}

/// The rule of the module doc. `lists_kvm` (the host's capabilities) and `probe`
/// (the local KVM probe) are asked only when their answer matters.
fn decide<E>(
    choice: DomainTypeChoice,
    local: bool,
    lists_kvm: impl FnOnce() -> Result<bool, E>,
    probe: impl FnOnce() -> &'static Probe,
) -> Result<Decision, E> {
    let decision = |kind, reason, probe| Decision { kind, reason, probe };
    Ok(match choice {
        DomainTypeChoice::Qemu => decision(DomainType::Qemu, "forced by BASALT_DOMAIN_TYPE=qemu", None),
        DomainTypeChoice::Kvm => {
            if lists_kvm()? {
                decision(DomainType::Kvm, "forced by BASALT_DOMAIN_TYPE=kvm", None)
            } else {
                decision(DomainType::Qemu, "BASALT_DOMAIN_TYPE=kvm, but the host's capabilities do not list kvm", None)
            }
        }
        DomainTypeChoice::Detect if !local => decision(
            DomainType::Qemu,
            "remote host: no probe can run there, and BASALT_DOMAIN_TYPE=kvm is not set",
            None,
        ),
        DomainTypeChoice::Detect => {
            if !lists_kvm()? {
                decision(DomainType::Qemu, "the host's capabilities do not list kvm", None)
            } else {
                let probe = probe();
                if probe.works() {
                    decision(DomainType::Kvm, "a probe guest ran on /dev/kvm", Some(probe))
                } else {
                    decision(DomainType::Qemu, "KVM is listed, but the local KVM probe failed", Some(probe))
                }
            }
        }
    })
}

impl Hypervisor for Libvirt {
    fn capacity(&self, uri: &str) -> Result<HostCapacity, HvError> {
        let info = self.with_conn(uri, |conn| conn.node_info())?;
        Ok(HostCapacity { cpus: info.cpus, memory_mib: info.memory / 1024 })
    }

    fn define(&self, uri: &str, spec: &DomainSpec) -> Result<(), HvError> {
        let memory_kib = spec
            .memory_mib
            .checked_mul(1024)
            .ok_or_else(|| HvError::Failed(format!("memory of {} MiB is out of range", spec.memory_mib)))?;
        let kind = self.with_conn(uri, |conn| self.domain_type(uri, conn))?;
        let xml = domain_xml(kind, spec, memory_kib)?;
        // VALIDATE checks the XML against libvirt's schema, so a mistake in it is
        // refused here instead of being silently dropped by the parser. With the
        // test driver the check runs in this process, in libxml2's RelaxNG code,
        // whose first use is not thread-safe (two at once fail with "type
        // 'unsignedInt' is not exported"): one validation at a time.
        static VALIDATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = VALIDATING.lock().unwrap_or_else(|e| e.into_inner());
        self.with_conn(uri, |conn| conn.define_domain_xml_flags(&xml, sys::VIR_DOMAIN_DEFINE_VALIDATE).map(drop))
    }

    fn power(&self, uri: &str, id: Uuid) -> Result<Option<DomainPower>, HvError> {
        self.with_conn(uri, |conn| match conn.lookup_domain_by_uuid(id) {
            Ok(dom) => domain_power(&dom).map(Some),
            Err(e) if is_code(&e, ErrorNumber::NoDomain) => Ok(None),
            Err(e) => Err(e),
        })
    }

    fn domains(&self, uri: &str) -> Result<Vec<(Uuid, DomainPower)>, HvError> {
        self.with_conn(uri, |conn| {
            let mut out = Vec::new();
            for dom in conn.list_all_domains(0)? {
                // A domain can vanish between the listing and the questions; it is
                // then simply not there.
                let found = dom.name().and_then(|name| {
                    if !name.starts_with(NAME_PREFIX) {
                        return Ok(None);
                    }
                    Ok(Some((dom.uuid()?, domain_power(&dom)?)))
                });
                match found {
                    Ok(Some(entry)) => out.push(entry),
                    Ok(None) => {}
                    Err(e) if is_code(&e, ErrorNumber::NoDomain) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })
    }

    fn start(&self, uri: &str, id: Uuid) -> Result<(), HvError> {
        self.with_domain_in_state(uri, id, already_running, |dom| dom.create())
    }

    fn shutdown(&self, uri: &str, id: Uuid) -> Result<(), HvError> {
        self.with_domain_in_state(uri, id, not_running, |dom| dom.shutdown())
    }

    fn destroy(&self, uri: &str, id: Uuid) -> Result<(), HvError> {
        self.with_domain(uri, id, destroy_if_active)
    }

    fn reboot(&self, uri: &str, id: Uuid) -> Result<(), HvError> {
        self.with_domain_in_state(uri, id, not_running, |dom| dom.reboot(sys::VIR_DOMAIN_REBOOT_DEFAULT))
    }

    /// Suspending a paused domain is done already (as the QEMU driver has it).
    fn suspend(&self, uri: &str, id: Uuid) -> Result<(), HvError> {
        self.with_domain_in_state(uri, id, not_running, |dom| match domain_power(dom)? {
            DomainPower::Paused => Ok(()),
            _ => dom.suspend(),
        })
    }

    /// Resuming a running domain is done already (as the QEMU driver has it).
    fn resume(&self, uri: &str, id: Uuid) -> Result<(), HvError> {
        self.with_domain_in_state(uri, id, not_running, |dom| match domain_power(dom)? {
            DomainPower::Running => Ok(()),
            _ => dom.resume(),
        })
    }

    fn resize(&self, uri: &str, id: Uuid, vcpus: u32, memory_mib: u64, live: bool) -> Result<(), HvError> {
        let memory_kib = memory_mib
            .checked_mul(1024)
            .ok_or_else(|| HvError::Failed(format!("memory of {memory_mib} MiB is out of range")))?;
        self.with_domain(uri, id, |dom| {
            // The persistent config first and on its own: the maxima, then the
            // current values (libvirt clamps a current value above a new maximum).
            // Some drivers refuse CONFIG|LIVE in one call, so live is a second call.
            let config = sys::VIR_DOMAIN_AFFECT_CONFIG;
            dom.set_vcpus_flags(vcpus, sys::VIR_DOMAIN_VCPU_MAXIMUM | config)?;
            dom.set_memory_flags(memory_kib, sys::VIR_DOMAIN_MEM_MAXIMUM | config)?;
            dom.set_vcpus_flags(vcpus, config)?;
            dom.set_memory_flags(memory_kib, config)?;
            // A domain that is not running has nothing live to change; the config
            // above is what it boots with. Live refusals are returned and the caller
            // decides whether a restart is due. On QEMU expect them: a running
            // domain cannot grow past the maxima it booted with, and without a
            // balloon (see `domain_xml`) its memory cannot change live at all.
            if live && dom.is_active()? {
                let live = sys::VIR_DOMAIN_AFFECT_LIVE;
                dom.set_vcpus_flags(vcpus, live)?;
                dom.set_memory_flags(memory_kib, live)?;
            }
            Ok(())
        })
    }

    fn undefine(&self, uri: &str, id: Uuid) -> Result<(), HvError> {
        self.with_conn(uri, |conn| {
            let dom = match conn.lookup_domain_by_uuid(id) {
                Ok(dom) => dom,
                Err(e) if is_code(&e, ErrorNumber::NoDomain) => return Ok(()),
                Err(e) => return Err(e),
            };
            destroy_if_active(&dom)?;
            // Snapshot metadata and any managed-save image would otherwise make
            // libvirt refuse to undefine (and leave orphans behind).
            let flags = sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE;
            match dom.undefine_flags(flags) {
                Err(e) if is_code(&e, ErrorNumber::NoDomain) => Ok(()),
                other => other,
            }
        })
    }

    fn snapshot_create(&self, uri: &str, id: Uuid, snapshot: &str) -> Result<(), HvError> {
        let xml = format!("<domainsnapshot><name>{}</name></domainsnapshot>", xml_escape(snapshot));
        self.with_domain(uri, id, |dom| dom.create_snapshot_xml(&xml, 0).map(drop))
    }

    fn snapshot_revert(&self, uri: &str, id: Uuid, snapshot: &str) -> Result<(), HvError> {
        self.with_domain(uri, id, |dom| Domain::lookup_snapshot_by_name(dom, snapshot, 0)?.revert(0))
    }

    /// A missing snapshot is `Ok`; a missing domain is still [`HvError::NotFound`],
    /// so that asking the wrong host does not pass for a deletion.
    fn snapshot_delete(&self, uri: &str, id: Uuid, snapshot: &str) -> Result<(), HvError> {
        self.with_domain(uri, id, |dom| {
            match Domain::lookup_snapshot_by_name(dom, snapshot, 0).and_then(|snap| snap.delete(0)) {
                Err(e) if is_code(&e, ErrorNumber::NoDomainSnapshot) => Ok(()),
                other => other,
            }
        })
    }

    fn migrate(&self, from: &str, to: &str, id: Uuid, live: bool) -> Result<(), HvError> {
        if is_test_uri(from) || is_test_uri(to) {
            return Err(HvError::Unsupported("libvirt's test driver cannot migrate domains".into()));
        }
        let dest = self.connect(to)?;
        let source = self.connect(from)?;
        // Not retried on a lost connection: a migration that broke halfway must be
        // looked at (where is the domain now?), not started over blindly.
        let result = (|| {
            let dom = source.lookup_domain_by_uuid(id)?;
            let mut flags = sys::VIR_MIGRATE_PERSIST_DEST | sys::VIR_MIGRATE_UNDEFINE_SOURCE;
            if dom.is_active()? {
                if live {
                    flags |= sys::VIR_MIGRATE_LIVE;
                }
            } else {
                // A domain that is not running moves as its definition only.
                flags |= sys::VIR_MIGRATE_OFFLINE;
            }
            dom.migrate(&dest, flags, None, None, 0).map(drop)
        })();
        result.map_err(|e| {
            for (uri, conn) in [(from, &source), (to, &dest)] {
                if !matches!(conn.is_alive(), Ok(true)) {
                    self.forget(uri, conn);
                }
            }
            map_err(from, e)
        })
    }

    fn metrics(&self, uri: &str, id: Uuid) -> Result<DomainMetrics, HvError> {
        self.with_domain(uri, id, |dom| {
            let info = dom.info()?;
            // Memory statistics need a balloon driver in the guest (QEMU) or are
            // made up (test driver); a driver without them is no error.
            let memory_stats = match dom.memory_stats(0) {
                Ok(stats) => stats.iter().filter_map(|s| memory_stat_name(s.tag).map(|n| (n, s.val))).collect(),
                Err(e) if is_code(&e, ErrorNumber::NoSupport) || is_code(&e, ErrorNumber::OperationInvalid) => {
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            Ok(DomainMetrics {
                power: domain_power(dom)?,
                vcpus: info.nr_virt_cpu,
                max_memory_kib: info.max_mem,
                memory_kib: info.memory,
                cpu_time_ns: info.cpu_time,
                memory_stats,
            })
        })
    }

    fn reset(&self, uri: &str, id: Uuid) -> Result<(), HvError> {
        self.with_domain_in_state(uri, id, not_running, |dom| dom.reset())
    }

    fn attach_device(&self, uri: &str, id: Uuid, device: &Device) -> Result<bool, HvError> {
        self.change_device(uri, id, device, true)
    }

    fn detach_device(&self, uri: &str, id: Uuid, device: &Device) -> Result<bool, HvError> {
        self.change_device(uri, id, device, false)
    }

    fn console(&self, uri: &str, id: Uuid) -> Result<Arc<dyn ConsoleStream>, HvError> {
        let stream = self.with_conn(uri, |conn| {
            let dom = conn.lookup_domain_by_uuid(id)?;
            // Blocking stream (flags 0): reads wait for output, as ConsoleStream says.
            let stream = Stream::new(conn, 0)?;
            // FORCE takes the console over from a previous session that never let go.
            dom.open_console(None, &stream, sys::VIR_DOMAIN_CONSOLE_FORCE)?;
            Ok(stream)
        })?;
        Ok(Arc::new(LibvirtConsole { stream: Some(stream), uri: uri.to_owned() }))
    }
}

/// A domain's serial console as a libvirt stream.
///
/// `virt::stream::Stream` is `Send` and `Sync` in virt 0.5, and libvirt's client
/// lets one thread wait in a blocking receive while another sends on the same
/// stream, which is what a bidirectional console bridge does.
struct LibvirtConsole {
    /// `None` only inside `drop`, which must consume the stream to abort it.
    stream: Option<Stream>,
    uri: String,
}

impl ConsoleStream for LibvirtConsole {
    fn read(&self, buf: &mut [u8]) -> Result<usize, HvError> {
        let Some(stream) = self.stream.as_ref() else { return Ok(0) };
        let n = stream.recv(buf).map_err(|e| map_err(&self.uri, e))?;
        // Only non-blocking streams return a negative count (-2, "would block"),
        // and this one is blocking.
        usize::try_from(n).map_err(|_| HvError::Failed(format!("console stream returned {n}")))
    }

    fn write(&self, mut data: &[u8]) -> Result<(), HvError> {
        let Some(stream) = self.stream.as_ref() else {
            return Err(HvError::Failed("console stream is closed".into()));
        };
        while !data.is_empty() {
            let n = stream.send(data).map_err(|e| map_err(&self.uri, e))?;
            // A blocking send makes progress or fails; zero or less would loop forever.
            let sent = usize::try_from(n)
                .ok()
                .filter(|&n| n > 0 && n <= data.len())
                .ok_or_else(|| HvError::Failed(format!("console stream accepted {n} bytes")))?;
            data = &data[sent..];
        }
        Ok(())
    }
}

impl Drop for LibvirtConsole {
    fn drop(&mut self) {
        // libvirt requires aborting a stream whose transfer is still going before
        // freeing it; an error here means it already ended, which is fine.
        if let Some(stream) = self.stream.take() {
            let _ = stream.abort();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DomainType {
    Test,
    Qemu,
    Kvm,
}

impl fmt::Display for DomainType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DomainType::Test => "test",
            DomainType::Qemu => "qemu",
            DomainType::Kvm => "kvm",
        })
    }
}

/// The domain XML for `spec`. Every value from the spec goes through
/// [`xml_escape`]; the rest is fixed text.
fn domain_xml(kind: DomainType, spec: &DomainSpec, memory_kib: u64) -> Result<String, HvError> {
    let name = xml_escape(&spec.name);
    let (id, vcpus) = (spec.id, spec.vcpus);
    let disk = match &spec.disk {
        Some(path) => format!(
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
             <source file='{}'/><target dev='vda' bus='virtio'/></disk>",
            xml_escape(path_str(path)?)
        ),
        None => String::new(),
    };
    let disk = spec.devices.iter().try_fold(disk, |xml, device| Ok::<_, HvError>(xml + &device_xml(device)?))?;
    let head = format!(
        "<name>{name}</name><uuid>{id}</uuid>\
         <memory unit='KiB'>{memory_kib}</memory><currentMemory unit='KiB'>{memory_kib}</currentMemory>\
         <vcpu>{vcpus}</vcpu>"
    );
    let hv = match kind {
        // The test driver keeps domains in memory and runs nothing: it needs no devices.
        DomainType::Test => {
            let devices = if disk.is_empty() { String::new() } else { format!("<devices>{disk}</devices>") };
            return Ok(format!("<domain type='test'>{head}<os><type>hvm</type></os>{devices}</domain>"));
        }
        DomainType::Qemu => "qemu",
        DomainType::Kvm => "kvm",
    };
    let boot = match &spec.kernel {
        Some(k) => format!(
            "<kernel>{}</kernel><initrd>{}</initrd><cmdline>{}</cmdline>",
            xml_escape(path_str(&k.kernel)?),
            xml_escape(path_str(&k.initrd)?),
            xml_escape(&k.cmdline)
        ),
        None => "<boot dev='hd'/>".to_owned(),
    };
    // ACPI is what makes `shutdown` (an ACPI power-button press) reach the guest.
    // The serial port doubles as the console `console()` opens; no graphics, and no
    // balloon (memory is what `resize` sets, not something a guest driver negotiates).
    Ok(format!(
        "<domain type='{hv}'>{head}\
         <os><type arch='x86_64' machine='pc'>hvm</type>{boot}</os>\
         <features><acpi/><apic/></features>\
         <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>\
         <devices>{disk}\
         <serial type='pty'><target port='0'/></serial>\
         <console type='pty'><target type='serial' port='0'/></console>\
         <memballoon model='none'/></devices>\
         </domain>"
    ))
}

/// The XML of a device added after definition. NICs are user-mode (SLIRP) on
/// QEMU: the tenant network's data plane (a bridge or overlay per network) is
/// not built yet, see docs/compute.md; the MAC is the interface's.
fn device_xml(device: &Device) -> Result<String, HvError> {
    Ok(match device {
        Device::Nic { mac } => {
            format!("<interface type='user'><mac address='{}'/><model type='virtio'/></interface>", xml_escape(mac))
        }
        Device::Disk { path, target } => format!(
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
             <source file='{}'/><target dev='{}' bus='virtio'/></disk>",
            xml_escape(path_str(path)?),
            xml_escape(target)
        ),
    })
}

/// `domain` (libvirt's own XML of a definition) with `device` added to its devices.
fn with_device(domain: &str, device: &str) -> String {
    match (domain.rfind("</devices>"), domain.rfind("</domain>")) {
        (Some(at), _) => format!("{}{device}{}", &domain[..at], &domain[at..]),
        (None, Some(at)) => format!("{}<devices>{device}</devices>{}", &domain[..at], &domain[at..]),
        (None, None) => domain.to_owned(),
    }
}

/// `domain` without the element of `device`: the `<interface>` with its MAC, or
/// the `<disk>` with its source file (as libvirt writes them: single quotes).
fn without_device(domain: &str, device: &Device) -> String {
    let (tag, needle) = match device {
        Device::Nic { mac } => ("interface", format!("address='{}'", xml_escape(mac))),
        Device::Disk { path, .. } => ("disk", format!("file='{}'", xml_escape(&path.to_string_lossy()))),
    };
    let (open, close) = (format!("<{tag} "), format!("</{tag}>"));
    let mut out = domain.to_owned();
    let mut from = 0;
    while let Some(start) = out[from..].find(&open).map(|i| i + from) {
        let Some(end) = out[start..].find(&close).map(|i| i + start + close.len()) else { break };
        if out[start..end].contains(&needle) {
            out.replace_range(start..end, "");
        } else {
            from = end;
        }
    }
    out
}

/// Escapes text for XML element content and (single- or double-quoted) attributes.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn path_str(path: &Path) -> Result<&str, HvError> {
    path.to_str().ok_or_else(|| HvError::Failed(format!("path {} is not UTF-8", path.display())))
}

fn is_test_uri(uri: &str) -> bool {
    uri.starts_with("test:") || uri.starts_with("test+")
}

/// Whether `uri` names this machine's libvirt: nothing between `://` and the
/// path (`qemu:///system`, `qemu+unix:///session`). Any host, even `localhost`,
/// makes it remote (see the module doc).
fn is_local_uri(uri: &str) -> bool {
    uri.split_once("://").is_some_and(|(_, rest)| rest.is_empty() || rest.starts_with(['/', '?']))
}

/// The power state as Basalt sees it. `info()` rather than `state()`: virt 0.5's
/// `Domain::state` ignores libvirt's failure and reports an unknown state instead.
fn domain_power(dom: &Domain) -> Result<DomainPower, VirtError> {
    Ok(match dom.info()?.state.known() {
        Some(DomainState::Running | DomainState::Blocked) => DomainPower::Running,
        Some(DomainState::Paused | DomainState::PMSuspended) => DomainPower::Paused,
        // Shutting down: the guest is still running (and still holds its resources)
        // until it powers off.
        Some(DomainState::Shutdown) => DomainPower::Running,
        Some(DomainState::NoState | DomainState::Shutoff | DomainState::Crashed) | None => DomainPower::Off,
    })
}

/// The name of a `virDomainMemoryStatTags` value.
fn memory_stat_name(tag: u32) -> Option<&'static str> {
    Some(match tag {
        sys::VIR_DOMAIN_MEMORY_STAT_SWAP_IN => "swap_in",
        sys::VIR_DOMAIN_MEMORY_STAT_SWAP_OUT => "swap_out",
        sys::VIR_DOMAIN_MEMORY_STAT_MAJOR_FAULT => "major_fault",
        sys::VIR_DOMAIN_MEMORY_STAT_MINOR_FAULT => "minor_fault",
        sys::VIR_DOMAIN_MEMORY_STAT_UNUSED => "unused",
        sys::VIR_DOMAIN_MEMORY_STAT_AVAILABLE => "available",
        sys::VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON => "actual_balloon",
        sys::VIR_DOMAIN_MEMORY_STAT_RSS => "rss",
        sys::VIR_DOMAIN_MEMORY_STAT_USABLE => "usable",
        sys::VIR_DOMAIN_MEMORY_STAT_DISK_CACHES => "disk_caches",
        _ => return None,
    })
}

fn already_running(dom: &Domain) -> Result<Option<&'static str>, VirtError> {
    Ok(dom.is_active()?.then_some("domain is already running"))
}

fn not_running(dom: &Domain) -> Result<Option<&'static str>, VirtError> {
    Ok((!dom.is_active()?).then_some("domain is not running"))
}

/// Forced power-off; a domain that is already off (or goes off meanwhile) is done.
fn destroy_if_active(dom: &Domain) -> Result<(), VirtError> {
    if !dom.is_active()? {
        return Ok(());
    }
    match dom.destroy() {
        Err(e) if is_code(&e, ErrorNumber::OperationInvalid) && !dom.is_active()? => Ok(()),
        other => other,
    }
}

fn is_code(e: &VirtError, code: ErrorNumber) -> bool {
    e.code().is(code)
}

/// Whether `e` means the connection itself is gone rather than the call refused.
fn connection_lost(conn: &Connect, e: &VirtError) -> bool {
    if !matches!(conn.is_alive(), Ok(true)) {
        return true;
    }
    is_connection_error(e)
}

/// Errors of the transport, not of the operation: the client-side RPC layer's
/// failures ("End of file while reading data", "client socket is closed") and
/// the codes libvirt uses for a missing or broken connection.
fn is_connection_error(e: &VirtError) -> bool {
    let code = e.code();
    code.is_any(vec![ErrorNumber::NoConnect, ErrorNumber::InvalidConn, ErrorNumber::Rpc])
        || (e.domain().is_any(vec![ErrorDomain::Rpc, ErrorDomain::Remote])
            && code.is_any(vec![ErrorNumber::SystemError, ErrorNumber::InternalError]))
}

/// libvirt's error → [`HvError`], by error code (the message is kept as is).
fn map_err(uri: &str, e: VirtError) -> HvError {
    let message = e.message().to_owned();
    match e.code().known() {
        Some(ErrorNumber::NoDomain | ErrorNumber::NoDomainSnapshot) => HvError::NotFound(message),
        Some(ErrorNumber::OperationInvalid) => HvError::InvalidState(message),
        // "Unsupported configuration" too: the host's QEMU or driver cannot do what
        // was asked of it (e.g. a full snapshot of a domain without a qcow2 disk).
        Some(
            ErrorNumber::NoSupport
            | ErrorNumber::OperationUnsupported
            | ErrorNumber::ArgumentUnsupported
            | ErrorNumber::ConfigUnsupported,
        ) => HvError::Unsupported(message),
        _ if is_connection_error(&e) => HvError::Unreachable { uri: uri.to_owned(), message },
        _ => HvError::Failed(message),
    }
}

/// libvirt prints every error to stderr by default; ours are returned and logged
/// by the callers instead. The callback is process-wide, so set it once.
fn silence_libvirt_error_printer() {
    static ONCE: Once = Once::new();
    ONCE.call_once(virt::error::clear_error_callback);
}

/// Locks a mutex whose data cannot be left half-updated (a map of slots, an
/// optional connection), so a panic elsewhere need not poison it for good.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::KernelBoot;

    #[test]
    fn local_uris_have_no_host() {
        for uri in ["qemu:///system", "qemu:///session", "qemu+unix:///system", "qemu:///system?socket=/x", "kvm:///"] {
            assert!(is_local_uri(uri), "{uri}");
        }
        for uri in ["qemu+ssh://host/system", "qemu+tcp://127.0.0.1:16510/system", "qemu://localhost/system"] {
            assert!(!is_local_uri(uri), "{uri}");
        }
    }

    #[test]
    fn the_domain_type_rule() {
        use DomainTypeChoice::{Detect, Kvm, Qemu};
        static WORKS: Probe = Probe::Works;
        static HANGS: Probe = Probe::Hangs;
        let not_asked = || -> &'static Probe { panic!("the probe is not asked") };
        let caps_not_asked = || -> Result<bool, ()> { panic!("the capabilities are not asked") };
        let kind = |d: Result<Decision, ()>| d.unwrap().kind;

        // Forced: no probe; `kvm` still needs the capability.
        assert_eq!(kind(decide(Qemu, true, caps_not_asked, not_asked)), DomainType::Qemu);
        for local in [true, false] {
            assert_eq!(kind(decide(Kvm, local, || Ok(true), not_asked)), DomainType::Kvm);
            assert_eq!(kind(decide(Kvm, local, || Ok(false), not_asked)), DomainType::Qemu);
        }
        // Detected: remote hosts are never probed, local ones only when they list kvm.
        assert_eq!(kind(decide(Detect, false, caps_not_asked, not_asked)), DomainType::Qemu);
        assert_eq!(kind(decide(Detect, true, || Ok(false), not_asked)), DomainType::Qemu);
        assert_eq!(kind(decide(Detect, true, || Ok(true), || &HANGS)), DomainType::Qemu);
        let works = decide::<()>(Detect, true, || Ok(true), || &WORKS).unwrap();
        assert_eq!((works.kind, works.probe), (DomainType::Kvm, Some(&WORKS)));
        // A failing capabilities call is the caller's error, not a guess.
        assert!(decide::<()>(Detect, true, || Err(()), not_asked).is_err());
    }

    #[test]
    fn devices_are_added_to_and_removed_from_a_definition() {
        let nic = Device::Nic { mac: "52:54:00:01:02:03".into() };
        let disk = Device::Disk { path: "/v/a.qcow2".into(), target: "vdb".into() };
        let bare = "<domain type='test'><name>x</name></domain>";
        let one = with_device(bare, &device_xml(&nic).unwrap());
        assert!(one.contains("<devices><interface type='user'><mac address='52:54:00:01:02:03'/>"), "{one}");
        let two = with_device(&one, &device_xml(&disk).unwrap());
        assert!(two.contains("</interface><disk type='file'") && two.contains("file='/v/a.qcow2'"), "{two}");
        let other = Device::Nic { mac: "52:54:00:09:09:09".into() };
        assert_eq!(without_device(&two, &other), two, "another MAC removes nothing");
        let back = without_device(&without_device(&two, &disk), &nic);
        assert_eq!(back, "<domain type='test'><name>x</name><devices></devices></domain>");
    }

    #[test]
    fn xml_escape_covers_the_five_specials() {
        assert_eq!(xml_escape(r#"a&b<c>d"e'f"#), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
    }

    #[test]
    fn domain_xml_escapes_every_spec_value() {
        let spec = DomainSpec {
            id: Uuid::nil(),
            name: "basalt-<x>".into(),
            vcpus: 2,
            memory_mib: 512,
            disk: Some("/d/a'b.qcow2".into()),
            kernel: Some(KernelBoot {
                kernel: "/k&".into(),
                initrd: "/i".into(),
                cmdline: "console=ttyS0 x=\"<y>\"".into(),
            }),
            devices: vec![
                Device::Nic { mac: "52:54:00:01:02:03".into() },
                Device::Disk { path: "/v/<1>.qcow2".into(), target: "vdb".into() },
            ],
        };
        let xml = domain_xml(DomainType::Qemu, &spec, 512 * 1024).unwrap();
        assert!(xml.starts_with("<domain type='qemu'>"), "{xml}");
        assert!(xml.contains("<name>basalt-&lt;x&gt;</name>"), "{xml}");
        assert!(xml.contains("<source file='/d/a&apos;b.qcow2'/>"), "{xml}");
        assert!(xml.contains("<kernel>/k&amp;</kernel>"), "{xml}");
        assert!(xml.contains("<cmdline>console=ttyS0 x=&quot;&lt;y&gt;&quot;</cmdline>"), "{xml}");
        assert!(xml.contains("<memory unit='KiB'>524288</memory>"), "{xml}");
        assert!(!xml.contains("<boot dev='hd'/>"), "direct kernel boot needs no boot device: {xml}");
        assert!(xml.contains("<mac address='52:54:00:01:02:03'/>"), "the NIC is defined with the domain: {xml}");
        assert!(xml.contains("<source file='/v/&lt;1&gt;.qcow2'/><target dev='vdb'"), "and the volume: {xml}");
    }
}
