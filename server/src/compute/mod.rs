//! Compute: hosts, placement, disks and the long-running work on VMs.
//!
//! * [`hypervisor`]: the [`Hypervisor`] trait, the one interface to hosts.
//! * [`libvirt`]: its implementation over libvirt (crate `virt`).
//! * [`kvm_probe`]: whether KVM really works on this machine (a guest is run to see).
//! * [`placement`]: which host of a cluster gets a VM (system rows, atomic).
//! * [`disks`]: a VM's qcow2 disk as a linked clone of its template's image.
//! * [`operations`]: the operation records behind `202 Accepted` and the runner
//!   that carries the work out and undoes it when a step fails.
//! * [`vm_work`]: the steps of each VM operation.
//! * [`evacuate`]: moving every VM off a host (a system operation).
//! * [`reconciler`]: keeps hosts in line with Postgres, recovers VMs of lost
//!   hosts and finishes work a previous process left half-done.
//!
//! [`Compute`] is what the rest of the server holds: the hypervisor, reached only
//! through [`Compute::call`], which runs libvirt's blocking calls on the blocking
//! thread pool, never on the async runtime.

pub mod disks;
pub mod evacuate;
pub mod hypervisor;
pub mod kvm_probe;
pub mod libvirt;
pub mod operations;
pub mod placement;
pub mod reconciler;
pub mod schedules;
pub mod vm_work;

use std::path::PathBuf;
use std::sync::Arc;

pub use hypervisor::{
    ConsoleStream, Device, DomainMetrics, DomainPower, DomainSpec, HostCapacity, HvError, Hypervisor, KernelBoot,
};

use uuid::Uuid;

use crate::db::Tx;
use crate::error::ApiError;

/// The hypervisor and where VM disks live. Cheap to clone.
#[derive(Clone)]
pub struct Compute {
    hv: Arc<dyn Hypervisor>,
    /// VM disks are created under `<storage_dir>/vms/`.
    pub storage_dir: PathBuf,
    /// Schedulable vCPUs per host CPU.
    pub cpu_overcommit: u32,
}

impl Compute {
    pub fn new(hv: Arc<dyn Hypervisor>, storage_dir: PathBuf, cpu_overcommit: u32) -> Compute {
        Compute { hv, storage_dir, cpu_overcommit: cpu_overcommit.max(1) }
    }

    /// Runs blocking hypervisor work off the async runtime.
    pub async fn call<T, F>(&self, work: F) -> Result<T, HvError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Hypervisor) -> Result<T, HvError> + Send + 'static,
    {
        let hv = Arc::clone(&self.hv);
        tokio::task::spawn_blocking(move || work(&*hv))
            .await
            .unwrap_or_else(|e| Err(HvError::Failed(format!("hypervisor task failed: {e}"))))
    }

    /// The schedulable capacity of the host at `uri` (CPUs × overcommit, all memory).
    pub async fn schedulable(&self, uri: &str) -> Result<HostCapacity, HvError> {
        let uri = uri.to_string();
        let ratio = self.cpu_overcommit;
        let cap = self.call(move |hv| hv.capacity(&uri)).await?;
        Ok(HostCapacity { cpus: cap.cpus.saturating_mul(ratio), memory_mib: cap.memory_mib })
    }
}

/// The devices VM `vm` holds, as its definition carries them: its NICs (in the
/// order they were attached) and its attached data volumes (by guest device).
pub async fn devices_of(tx: &mut Tx, vm: Uuid) -> Result<Vec<Device>, ApiError> {
    let nics: Vec<(String,)> =
        sqlx::query_as("SELECT mac::text FROM vm_interfaces WHERE vm_id = $1 ORDER BY created_at, id")
            .bind(vm)
            .fetch_all(&mut **tx)
            .await?;
    let disks: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT path, device FROM volumes WHERE vm_id = $1 ORDER BY device")
            .bind(vm)
            .fetch_all(&mut **tx)
            .await?;
    let nics = nics.into_iter().map(|(mac,)| Device::Nic { mac });
    let disks =
        disks.into_iter().map(|(path, device)| Device::Disk { path: path.into(), target: device.unwrap_or_default() });
    Ok(nics.chain(disks).collect())
}

/// libvirt URIs Basalt accepts for hosts: a driver scheme, `://`, and no spaces.
pub fn valid_host_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once("://") else { return false };
    let driver = scheme.split('+').next().unwrap_or("");
    matches!(driver, "test" | "qemu" | "kvm")
        && scheme.bytes().all(|b| b.is_ascii_lowercase() || b == b'+')
        && uri.len() <= 512
        && !rest.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

/// A hypervisor failure as a tenant may see it: never the host's name or URI
/// (libvirt's message is logged for provider staff instead).
impl From<HvError> for ApiError {
    fn from(e: HvError) -> ApiError {
        tracing::warn!(error = %e, "hypervisor call failed");
        match e {
            HvError::Unreachable { .. } => {
                ApiError::Unavailable("the VM's host is unreachable; try again later".into())
            }
            HvError::NotFound(_) => ApiError::Conflict {
                code: "vm_missing_on_host",
                message: "the VM is missing on its host; the reconciler will repair it".into(),
            },
            HvError::Unsupported(m) => ApiError::Unprocessable {
                code: "unsupported",
                message: format!("the host cannot do this: {}", public_message(&m)),
                details: serde_json::json!({}),
            },
            HvError::InvalidState(_) => ApiError::Conflict {
                code: "invalid_vm_state",
                message: "the VM is not in a state that allows this".into(),
            },
            HvError::Failed(_) => ApiError::Unavailable("the hypervisor refused the request; try again later".into()),
        }
    }
}

/// The part of a hypervisor message that is safe to show a tenant: our own
/// `Unsupported` messages are written without host names; anything that looks
/// like a URI is cut.
pub fn public_message(m: &str) -> String {
    if m.contains("://") {
        "operation not supported by the hypervisor".into()
    } else {
        m.to_string()
    }
}
