//! The [`Hypervisor`](super::Hypervisor) implementation over libvirt (placeholder: being written).
