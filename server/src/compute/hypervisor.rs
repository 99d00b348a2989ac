//! The hypervisor seam: everything Basalt asks of a host, as one trait.
//!
//! Calls are **blocking** (libvirt's C API blocks): callers on the async runtime
//! go through [`crate::compute::Compute`], which runs them on the blocking pool.
//! Hosts are named by their libvirt URI; domains by the VM's id, which is also the
//! libvirt domain UUID, so a domain found on a host maps back to its VM row.
//! The one implementation is [`super::libvirt::Libvirt`].

use uuid::Uuid;

/// What the hypervisor reports about a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCapacity {
    /// Physical CPUs (threads) the host has.
    pub cpus: u32,
    pub memory_mib: u64,
}

/// What a domain is doing, as the hypervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainPower {
    Running,
    /// Paused (suspended) in memory.
    Paused,
    /// Defined but not running (shut off, crashed, or never started).
    Off,
}

/// Live figures of a domain (`virDomainGetInfo`, and memory statistics where
/// the driver has them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainMetrics {
    pub power: DomainPower,
    pub vcpus: u32,
    pub max_memory_kib: u64,
    pub memory_kib: u64,
    pub cpu_time_ns: u64,
    /// `virDomainMemoryStats` by name (`rss`, `available`, ...); empty where unsupported.
    pub memory_stats: Vec<(&'static str, u64)>,
}

/// Everything needed to define a VM's domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    /// The VM's id; becomes the domain UUID.
    pub id: Uuid,
    /// The domain name (`basalt-<id>`: unique on the host, meaningless to guests).
    pub name: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// The VM's own qcow2 disk (a linked clone of the template's image), if any.
    pub disk: Option<std::path::PathBuf>,
    /// Direct kernel boot (tests' tiny guest): kernel, initrd and command line.
    pub kernel: Option<KernelBoot>,
    /// The NICs and data volumes the VM holds: a definition made again (a
    /// rebuild, the reconciler repairing a lost domain) keeps them.
    pub devices: Vec<Device>,
}

impl DomainSpec {
    /// A domain `basalt-<id>` of this size with no disk, kernel or devices.
    pub fn new(id: Uuid, vcpus: u32, memory_mib: u64) -> DomainSpec {
        DomainSpec {
            id,
            name: format!("basalt-{id}"),
            vcpus,
            memory_mib,
            disk: None,
            kernel: None,
            devices: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelBoot {
    pub kernel: std::path::PathBuf,
    pub initrd: std::path::PathBuf,
    pub cmdline: String,
}

/// A device added to a domain after it was defined (a NIC, a data volume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// A virtio NIC with this MAC address.
    Nic { mac: String },
    /// A qcow2 data disk at `path`, seen by the guest as `target` (`vdb`, ...).
    Disk { path: std::path::PathBuf, target: String },
}

/// A typed hypervisor failure. The message is libvirt's, which may name the host:
/// it is for logs and provider staff, and is never shown to tenants as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HvError {
    /// The host cannot be reached (connection refused, daemon down).
    #[error("host {uri} is unreachable: {message}")]
    Unreachable { uri: String, message: String },
    /// No such domain (or snapshot) on the host.
    #[error("not found on the host: {0}")]
    NotFound(String),
    /// The hypervisor cannot do this (e.g. the test driver cannot migrate).
    #[error("not supported by this host: {0}")]
    Unsupported(String),
    /// The domain is not in a state that allows it (e.g. start a running domain).
    #[error("invalid domain state: {0}")]
    InvalidState(String),
    /// Anything else libvirt refused.
    #[error("hypervisor error: {0}")]
    Failed(String),
}

/// A serial console stream of a running domain. One thread may block in `read`
/// while another writes (a console bridge does both at once).
pub trait ConsoleStream: Send + Sync {
    /// Blocks until output is available; `Ok(0)` at end of stream.
    fn read(&self, buf: &mut [u8]) -> Result<usize, HvError>;
    fn write(&self, data: &[u8]) -> Result<(), HvError>;
}

/// Everything Basalt does on a host. Every method blocks.
pub trait Hypervisor: Send + Sync + 'static {
    /// CPUs and memory of the host at `uri`; also proves it is reachable.
    fn capacity(&self, uri: &str) -> Result<HostCapacity, HvError>;
    /// Defines (persistently) the domain; defining an existing id replaces its config.
    fn define(&self, uri: &str, spec: &DomainSpec) -> Result<(), HvError>;
    /// The domain's power state; `Ok(None)` when it is not defined on the host.
    fn power(&self, uri: &str, id: Uuid) -> Result<Option<DomainPower>, HvError>;
    /// Every domain on the host that Basalt defined (UUID and power), for the reconciler.
    fn domains(&self, uri: &str) -> Result<Vec<(Uuid, DomainPower)>, HvError>;
    fn start(&self, uri: &str, id: Uuid) -> Result<(), HvError>;
    /// Asks the guest to shut down (ACPI); returns at once.
    fn shutdown(&self, uri: &str, id: Uuid) -> Result<(), HvError>;
    /// Powers off at once.
    fn destroy(&self, uri: &str, id: Uuid) -> Result<(), HvError>;
    fn reboot(&self, uri: &str, id: Uuid) -> Result<(), HvError>;
    fn suspend(&self, uri: &str, id: Uuid) -> Result<(), HvError>;
    fn resume(&self, uri: &str, id: Uuid) -> Result<(), HvError>;
    /// Changes vCPUs and memory: in the persistent config, and live too when `live`.
    fn resize(&self, uri: &str, id: Uuid, vcpus: u32, memory_mib: u64, live: bool) -> Result<(), HvError>;
    /// Removes the domain's definition and its snapshot metadata (not its disk).
    /// Not defined: `Ok(())`.
    fn undefine(&self, uri: &str, id: Uuid) -> Result<(), HvError>;
    fn snapshot_create(&self, uri: &str, id: Uuid, snapshot: &str) -> Result<(), HvError>;
    fn snapshot_revert(&self, uri: &str, id: Uuid, snapshot: &str) -> Result<(), HvError>;
    /// Not there: `Ok(())`.
    fn snapshot_delete(&self, uri: &str, id: Uuid, snapshot: &str) -> Result<(), HvError>;
    /// Moves the domain from `from` to `to`: live (`VIR_MIGRATE_LIVE`) when it
    /// runs, otherwise offline (its definition moves). The destination keeps it
    /// persistent; the source forgets it.
    fn migrate(&self, from: &str, to: &str, id: Uuid, live: bool) -> Result<(), HvError>;
    /// The domain's live figures.
    fn metrics(&self, uri: &str, id: Uuid) -> Result<DomainMetrics, HvError>;
    /// Resets a running domain at once (`virDomainReset`: the reset button, no
    /// guest shutdown).
    fn reset(&self, uri: &str, id: Uuid) -> Result<(), HvError>;
    /// Adds `device` to the domain's persistent definition, and to the running
    /// domain when it runs and the host can hot-plug. Answers whether the
    /// running domain has it now (`false`: from its next boot).
    fn attach_device(&self, uri: &str, id: Uuid, device: &Device) -> Result<bool, HvError>;
    /// Removes `device` the same way; a device that is not there is removed already.
    fn detach_device(&self, uri: &str, id: Uuid, device: &Device) -> Result<bool, HvError>;
    /// Opens the domain's serial console.
    fn console(&self, uri: &str, id: Uuid) -> Result<std::sync::Arc<dyn ConsoleStream>, HvError>;
}
