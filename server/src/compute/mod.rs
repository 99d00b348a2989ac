//! Compute: the hypervisor seam and the libvirt implementation behind it.
//!
//! * [`hypervisor`]: the [`Hypervisor`] trait, the one interface to hosts.
//! * [`libvirt`]: its implementation over libvirt (crate `virt`).

pub mod hypervisor;
pub mod libvirt;

pub use hypervisor::{ConsoleStream, DomainPower, DomainSpec, HostCapacity, HvError, Hypervisor, KernelBoot};
