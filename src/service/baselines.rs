//! Firmware baselines: their writes, and the compliance of servers with one (from the stored
//! inventory, no BMC traffic). Which binary applies to which server is decided by one rule,
//! [`applies`], that `db::baselines::push_applies` mirrors in SQL.

use crate::ctx::Ctx;
use crate::db::baselines::{self as db, ComponentStatus, ServerSet};
use crate::db::catalogue::{self, FirmwareBinary};
use crate::db::{pools, DbError};
use crate::service::Viewer;

/// Why a baseline operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// No such baseline.
    #[error("no such baseline")]
    NotFound,
    /// Another baseline has this name.
    #[error("firmware baseline with this name already exists.")]
    NameTaken,
    /// A query parameter names a row that does not exist or is not visible.
    #[error("{0}: Select a valid choice. That choice is not one of the available choices.")]
    InvalidChoice(&'static str),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Result alias of this module.
pub type BaselineResult<T> = Result<T, BaselineError>;

/// The message of a query parameter naming nothing visible.
pub const INVALID_CHOICE: &str =
    "Select a valid choice. That choice is not one of the available choices.";

/// True when `binary` applies to a server of `manufacturer` and `model` (see
/// [`FirmwareBinary::applies_to`]).
pub fn applies(binary: &FirmwareBinary, manufacturer: Option<&str>, model: Option<&str>) -> bool {
    binary.applies_to(manufacturer, model)
}

fn on_name(e: DbError) -> BaselineError {
    if db::NAME_CONSTRAINTS.iter().any(|c| e.violates(c)) {
        BaselineError::NameTaken
    } else {
        BaselineError::Db(e)
    }
}

/// Creates a baseline (binary ids already checked); returns its id.
pub async fn create(
    ctx: &Ctx,
    viewer: Viewer<'_>,
    name: &str,
    description: &str,
    binaries: &[i64],
) -> BaselineResult<i64> {
    let mut tx = ctx.db.begin().await?;
    let id = db::insert(&mut tx, name, description, binaries, viewer.id)
        .await
        .map_err(on_name)?;
    tx.commit().await.map_err(on_name)?;
    tracing::info!(baseline = id, user = %viewer.username, "firmware baseline created");
    Ok(id)
}

/// Changes the given fields of a baseline.
pub async fn update(
    ctx: &Ctx,
    id: i64,
    name: Option<&str>,
    description: Option<&str>,
    binaries: Option<&[i64]>,
) -> BaselineResult<()> {
    let mut tx = ctx.db.begin().await?;
    if db::get(&mut tx, id).await?.is_none() {
        return Err(BaselineError::NotFound);
    }
    db::update(&mut tx, id, name, description, binaries)
        .await
        .map_err(on_name)?;
    tx.commit().await.map_err(on_name)?;
    Ok(())
}

/// Deletes a baseline.
pub async fn delete(ctx: &Ctx, id: i64, viewer: Viewer<'_>) -> BaselineResult<()> {
    let mut tx = ctx.db.begin().await?;
    if db::delete(&mut tx, id).await? == 0 {
        return Err(BaselineError::NotFound);
    }
    tx.commit().await?;
    tracing::info!(baseline = id, user = %viewer.username, "firmware baseline deleted");
    Ok(())
}

/// Which servers a report covers, as the request named them.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// `?server=<id>`.
    Server(i64),
    /// `?resource_pool=<id>` (sub-pools included).
    Pool(i64),
    /// Neither: every server the caller sees.
    Visible,
}

/// One component of a server's report.
#[derive(Debug, Clone)]
pub struct Component {
    /// The binary.
    pub binary: FirmwareBinary,
    /// The installed version of its type, if any.
    pub installed_version: Option<String>,
    /// Compliant, non-compliant or missing.
    pub status: ComponentStatus,
}

/// The state of a server against a baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerStatus {
    /// Every applicable component is at the binary's version.
    Compliant,
    /// Some applicable component is at another version or missing.
    NonCompliant,
    /// No binary of the baseline applies.
    NotApplicable,
}

/// One server's report.
#[derive(Debug, Clone)]
pub struct ServerReport {
    /// Server id.
    pub server: i64,
    /// Server name.
    pub name: String,
    /// Its state.
    pub status: ServerStatus,
    /// The applicable binaries, in the baseline's order.
    pub components: Vec<Component>,
}

/// A compliance report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The baseline.
    pub baseline: i64,
    /// True when no server is non-compliant.
    pub compliant: bool,
    /// Per server, by id.
    pub servers: Vec<ServerReport>,
}

/// The binaries of a baseline, in its order.
pub async fn binaries_of(ctx: &Ctx, id: i64) -> BaselineResult<Vec<FirmwareBinary>> {
    let baseline = db::get(&ctx.db, id).await?.ok_or(BaselineError::NotFound)?;
    Ok(catalogue::firmware_binaries(&ctx.db, &baseline.firmware_binaries).await?)
}

/// The compliance of the servers in `scope` that `viewer` sees with baseline `id`.
pub async fn compliance(
    ctx: &Ctx,
    viewer: Viewer<'_>,
    id: i64,
    scope: Scope,
) -> BaselineResult<Report> {
    let binaries = binaries_of(ctx, id).await?;
    let set = match scope {
        Scope::Server(s) => {
            if !db::server_visible(&ctx.db, viewer.scope(), s).await? {
                return Err(BaselineError::InvalidChoice("server"));
            }
            ServerSet::Server(s)
        }
        Scope::Pool(p) => {
            if !pools::visible(&ctx.db, viewer.scope(), p).await? {
                return Err(BaselineError::InvalidChoice("resource_pool"));
            }
            ServerSet::PoolTree(p)
        }
        Scope::Visible => ServerSet::All,
    };
    let rows = db::compliance(&ctx.db, &binaries, set, viewer.scope()).await?;
    let servers: Vec<ServerReport> = rows
        .into_iter()
        .map(|row| {
            let components: Vec<Component> = row
                .components
                .into_iter()
                .zip(binaries.iter())
                .filter(|((st, _), _)| *st != ComponentStatus::NotApplicable)
                .map(|((status, installed_version), b)| Component {
                    binary: b.clone(),
                    installed_version,
                    status,
                })
                .collect();
            let status = if components.is_empty() {
                ServerStatus::NotApplicable
            } else if components
                .iter()
                .all(|c| c.status == ComponentStatus::Compliant)
            {
                ServerStatus::Compliant
            } else {
                ServerStatus::NonCompliant
            };
            ServerReport {
                server: row.server,
                name: row.name,
                status,
                components,
            }
        })
        .collect();
    Ok(Report {
        baseline: id,
        compliant: servers
            .iter()
            .all(|s| s.status != ServerStatus::NonCompliant),
        servers,
    })
}

/// Why a pool's compliance could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PoolComplianceError {
    /// No pool the viewer can see.
    #[error("no pool {0}")]
    NoPool(i64),
    /// The pool has no firmware baseline.
    #[error("Pool {0} has no firmware baseline.")]
    NoBaseline(i64),
    /// The baseline failed.
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The compliance view of pool `pool`'s baseline for the pool's servers (sub-pools included);
/// a pool without servers is compliant.
pub async fn pool_compliance(
    ctx: &Ctx,
    viewer: Viewer<'_>,
    pool: i64,
) -> Result<Report, PoolComplianceError> {
    let p = crate::db::pools::get(&ctx.db, pool)
        .await?
        .ok_or(PoolComplianceError::NoPool(pool))?;
    if !pools::visible(&ctx.db, viewer.scope(), pool).await? {
        return Err(PoolComplianceError::NoPool(pool));
    }
    let baseline = p
        .firmware_baseline
        .ok_or(PoolComplianceError::NoBaseline(pool))?;
    Ok(compliance(ctx, viewer, baseline, Scope::Pool(pool)).await?)
}

/// `compliant` or `non_compliant` for the pool detail (None without a baseline): one statement
/// over the stored inventory of the pool's servers (sub-pools included).
pub async fn pool_status(
    ctx: &Ctx,
    pool: i64,
    baseline: Option<i64>,
) -> Result<Option<&'static str>, BaselineError> {
    let Some(baseline) = baseline else {
        return Ok(None);
    };
    let binaries = binaries_of(ctx, baseline).await?;
    let rows = db::compliance(&ctx.db, &binaries, ServerSet::PoolTree(pool), None).await?;
    let non_compliant = rows.iter().any(|r| {
        r.components
            .iter()
            .any(|(st, _)| matches!(st, ComponentStatus::NonCompliant | ComponentStatus::Missing))
    });
    Ok(Some(if non_compliant {
        "non_compliant"
    } else {
        "compliant"
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(manufacturer: &str, models: &[&str]) -> FirmwareBinary {
        FirmwareBinary {
            id: 1,
            name: "b".into(),
            firmware_type: "BIOS".into(),
            version: "1".into(),
            manufacturer: manufacturer.into(),
            models: models.iter().map(|m| m.to_string()).collect(),
            file_name: String::new(),
            stored_name: String::new(),
            size: 1,
        }
    }

    #[test]
    fn applicability() {
        assert!(applies(&binary("", &[]), None, None));
        assert!(applies(&binary("Dell", &[]), Some("Dell Inc."), None));
        assert!(applies(&binary("dell", &[]), Some("DELL"), None));
        assert!(applies(&binary("Dell", &[]), Some("Dell, Inc."), None));
        assert!(!applies(&binary("Dell", &[]), Some("Dellish"), None));
        assert!(!applies(&binary("Dell", &[]), None, None));
        assert!(applies(
            &binary("Dell", &["PowerEdge R650"]),
            Some("Dell Inc."),
            Some("poweredge r650")
        ));
        assert!(!applies(
            &binary("Dell", &["PowerEdge R650"]),
            Some("Dell Inc."),
            Some("PowerEdge R6500")
        ));
    }
}
