//! VM disks: a qcow2 linked clone of the template's base image
//! (`qemu-img create -f qcow2 -b BASE -F qcow2 DISK SIZE`), so creating a VM costs
//! no copy, and removal when the VM goes. Disks live under
//! `<storage_dir>/vms/<vm-id>.qcow2` on a path every host of the cluster shares.

use std::path::{Path, PathBuf};

use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("the template's image {0} does not exist")]
    MissingImage(PathBuf),
    #[error("qemu-img failed: {0}")]
    QemuImg(String),
    #[error("disk I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the disk of VM `id` lives.
pub fn vm_disk_path(storage_dir: &Path, id: Uuid) -> PathBuf {
    storage_dir.join("vms").join(format!("{id}.qcow2"))
}

/// Creates `disk` as a linked clone of `base`, `size_gib` large (never smaller
/// than the base: qemu-img keeps the base's size if it is larger).
pub async fn clone_linked(base: &Path, disk: &Path, size_gib: i32) -> Result<(), DiskError> {
    if !tokio::fs::try_exists(base).await.unwrap_or(false) {
        return Err(DiskError::MissingImage(base.to_path_buf()));
    }
    if let Some(dir) = disk.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let out = tokio::process::Command::new("qemu-img")
        .arg("create")
        .args(["-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(base)
        .arg(disk)
        .arg(format!("{size_gib}G"))
        .output()
        .await?;
    if !out.status.success() {
        return Err(DiskError::QemuImg(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(())
}

/// Copies `disk` (a linked clone) into a standalone qcow2 image at `target`
/// (`qemu-img convert`: the backing chain is flattened), for a new template.
pub async fn flatten(disk: &Path, target: &Path) -> Result<(), DiskError> {
    if let Some(dir) = target.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let out = tokio::process::Command::new("qemu-img")
        .args(["convert", "-q", "-O", "qcow2"])
        .arg(disk)
        .arg(target)
        .output()
        .await?;
    if !out.status.success() {
        return Err(DiskError::QemuImg(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(())
}

/// Removes a VM's disk; already gone is fine.
pub async fn remove(disk: &Path) -> Result<(), DiskError> {
    match tokio::fs::remove_file(disk).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Where the data volume `id` lives: `<storage_dir>/volumes/<id>.qcow2`.
pub fn volume_path(storage_dir: &Path, id: Uuid) -> PathBuf {
    storage_dir.join("volumes").join(format!("{id}.qcow2"))
}

/// Creates an empty qcow2 data volume of `size_gib` (sparse: it takes space as
/// the guest writes).
pub async fn create_volume(path: &Path, size_gib: i32) -> Result<(), DiskError> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    qemu_img(&["create", "-q", "-f", "qcow2"], path, size_gib).await
}

/// Grows a data volume to `size_gib` (the guest sees the new size at its next
/// rescan or boot; shrinking is refused before this is called).
pub async fn grow_volume(path: &Path, size_gib: i32) -> Result<(), DiskError> {
    qemu_img(&["resize", "-q", "-f", "qcow2"], path, size_gib).await
}

async fn qemu_img(args: &[&str], path: &Path, size_gib: i32) -> Result<(), DiskError> {
    let out =
        tokio::process::Command::new("qemu-img").args(args).arg(path).arg(format!("{size_gib}G")).output().await?;
    if !out.status.success() {
        return Err(DiskError::QemuImg(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(())
}
