//! Placement: which host of a cluster a VM runs on, recorded as a system row
//! (`placements`) naming only the VM's id, so host usage is known without reading
//! any tenant's data. Every change locks the cluster's hosts first, so two
//! placements on one cluster are serialised and can never overfill a host.

use uuid::Uuid;

use crate::db::{Db, DbScope, Tx};
use crate::error::{ApiError, ApiResult};

/// A host as the compute code needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlacedHost {
    pub host_id: Uuid,
    pub uri: String,
}

async fn system_tx(db: &Db) -> ApiResult<Tx> {
    Ok(db.begin(DbScope::System, None, false).await?)
}

async fn lock_cluster_hosts(tx: &mut Tx, cluster: Uuid) -> ApiResult<()> {
    sqlx::query("SELECT id FROM hosts WHERE cluster_id = $1 ORDER BY id FOR UPDATE")
        .bind(cluster)
        .fetch_all(&mut **tx)
        .await?;
    Ok(())
}

/// The up host of `cluster` (other than `except`) with the most free memory that
/// fits `vcpus` and `memory_mib`; `only` restricts the choice to one host, and
/// hosts where any VM of `avoid` is placed are left out (a spread placement
/// group: `avoid` is the other members).
async fn choose(
    tx: &mut Tx,
    cluster: Uuid,
    vcpus: i32,
    memory_mib: i64,
    except: Option<Uuid>,
    only: Option<Uuid>,
    avoid: &[Uuid],
) -> ApiResult<PlacedHost> {
    let pick = |avoid: &[Uuid]| {
        sqlx::query_as::<_, PlacedHost>(
            "SELECT h.id AS host_id, h.uri FROM hosts h
               LEFT JOIN LATERAL (SELECT coalesce(sum(p.vcpus), 0) AS vcpus, coalesce(sum(p.memory_mib), 0) AS mem
                                    FROM placements p WHERE p.host_id = h.id) used ON true
              WHERE h.cluster_id = $1 AND h.state = 'up'
                AND ($4::uuid IS NULL OR h.id <> $4) AND ($5::uuid IS NULL OR h.id = $5)
                AND h.vcpus - used.vcpus >= $2 AND h.memory_mib - used.mem >= $3
                AND NOT EXISTS (SELECT 1 FROM placements m WHERE m.host_id = h.id AND m.vm_id = ANY($6))
              ORDER BY h.memory_mib - used.mem DESC, h.position LIMIT 1",
        )
        .bind(cluster)
        .bind(vcpus)
        .bind(memory_mib)
        .bind(except)
        .bind(only)
        .bind(avoid.to_vec())
    };
    if let Some(host) = pick(avoid).fetch_optional(&mut **tx).await? {
        return Ok(host);
    }
    // Say which rule refused: the spread, or capacity itself.
    if !avoid.is_empty() && pick(&[]).fetch_optional(&mut **tx).await?.is_some() {
        return Err(ApiError::Conflict {
            code: "placement_group_full",
            message: "every host with room already runs a VM of this placement group (policy spread); \
                      ask your provider for another host or use another group"
                .into(),
        });
    }
    Err(ApiError::Conflict {
        code: "no_capacity",
        message: "no host of the cluster has room for this VM; ask your provider for capacity".into(),
    })
}

/// Places VM `vm` on a host of `cluster` with room (and none of `avoid`'s
/// hosts), and records it.
pub async fn place(
    db: &Db,
    cluster: Uuid,
    vm: Uuid,
    vcpus: i32,
    memory_mib: i64,
    avoid: &[Uuid],
) -> ApiResult<PlacedHost> {
    let mut tx = system_tx(db).await?;
    lock_cluster_hosts(&mut tx, cluster).await?;
    let host = choose(&mut tx, cluster, vcpus, memory_mib, None, None, avoid).await?;
    sqlx::query("INSERT INTO placements (id, host_id, vm_id, vcpus, memory_mib) VALUES ($1, $2, $3, $4, $5)")
        .bind(Uuid::now_v7())
        .bind(host.host_id)
        .bind(vm)
        .bind(vcpus)
        .bind(memory_mib)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(host)
}

/// The host VM `vm` is placed on.
pub async fn host_of(db: &Db, vm: Uuid) -> ApiResult<PlacedHost> {
    let mut tx = system_tx(db).await?;
    let host: Option<PlacedHost> = sqlx::query_as(
        "SELECT h.id AS host_id, h.uri FROM placements p JOIN hosts h ON h.id = p.host_id WHERE p.vm_id = $1",
    )
    .bind(vm)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    host.ok_or_else(|| ApiError::Conflict {
        code: "vm_not_placed",
        message: "the VM has no host; the reconciler will repair it".into(),
    })
}

/// Changes what VM `vm` reserves on its host (a resize), if the host has room.
pub async fn resize(db: &Db, cluster: Uuid, vm: Uuid, vcpus: i32, memory_mib: i64) -> ApiResult<()> {
    let mut tx = system_tx(db).await?;
    lock_cluster_hosts(&mut tx, cluster).await?;
    let (host, old_vcpus, old_mem): (Uuid, i32, i64) =
        sqlx::query_as("SELECT host_id, vcpus, memory_mib FROM placements WHERE vm_id = $1")
            .bind(vm)
            .fetch_one(&mut *tx)
            .await?;
    // Room for the growth only: the VM's own reservation is already counted.
    let grow_cpu = (vcpus - old_vcpus).max(0);
    let grow_mem = (memory_mib - old_mem).max(0);
    if grow_cpu > 0 || grow_mem > 0 {
        choose(&mut tx, cluster, grow_cpu, grow_mem, None, Some(host), &[]).await.map_err(|_| ApiError::Conflict {
            code: "no_capacity",
            message: "the VM's host has no room for this size; migrate the VM first".into(),
        })?;
    }
    sqlx::query("UPDATE placements SET vcpus = $2, memory_mib = $3 WHERE vm_id = $1")
        .bind(vm)
        .bind(vcpus)
        .bind(memory_mib)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Chooses a destination for VM `vm` in its cluster (`wanted`, or placement's
/// choice among the other hosts, never one of `avoid`'s) without moving the
/// reservation yet.
pub async fn destination(
    db: &Db,
    cluster: Uuid,
    vm: Uuid,
    wanted: Option<Uuid>,
    avoid: &[Uuid],
) -> ApiResult<PlacedHost> {
    let mut tx = system_tx(db).await?;
    lock_cluster_hosts(&mut tx, cluster).await?;
    let (current, vcpus, mem): (Uuid, i32, i64) =
        sqlx::query_as("SELECT host_id, vcpus, memory_mib FROM placements WHERE vm_id = $1")
            .bind(vm)
            .fetch_one(&mut *tx)
            .await?;
    if wanted == Some(current) {
        return Err(ApiError::Conflict { code: "same_host", message: "the VM already runs on that host".into() });
    }
    let host = choose(&mut tx, cluster, vcpus, mem, Some(current), wanted, avoid).await?;
    tx.commit().await?;
    Ok(host)
}

/// Records that VM `vm` now runs on `host`.
pub async fn moved(db: &Db, vm: Uuid, host: Uuid) -> ApiResult<()> {
    let mut tx = system_tx(db).await?;
    sqlx::query("UPDATE placements SET host_id = $2 WHERE vm_id = $1").bind(vm).bind(host).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Forgets VM `vm`'s placement (it was deleted, or its create was undone).
pub async fn release(db: &Db, vm: Uuid) -> ApiResult<()> {
    let mut tx = system_tx(db).await?;
    sqlx::query("DELETE FROM placements WHERE vm_id = $1").bind(vm).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}
