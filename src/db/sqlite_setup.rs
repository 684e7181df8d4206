//! Process- and connection-wide SQLite settings that sqlx does not expose.
//!
//! - SQLite allocates through mimalloc, like the rest of the process, and keeps no allocation
//!   statistics. By default SQLite calls the C library's `malloc` under a process-wide mutex
//!   (for those statistics); with many connections on their own threads that mutex and glibc's
//!   per-thread arenas cost time on every row and hold on to memory after large answers.
//! - Each connection has the query planner stability guarantee on: plans do not depend on the
//!   values bound to a statement. Without it, a `LIKE` pattern or (after `ANALYZE`) any
//!   compared value is a planning input, so every execution with new values re-parses and
//!   re-plans the statement, which then costs more than running it.

use std::os::raw::{c_int, c_void};
use std::sync::Once;

use libmimalloc_sys as mi;
use libsqlite3_sys as ffi;

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    // SAFETY: plain allocation; SQLite never asks for a negative size.
    unsafe { mi::mi_malloc(usize::try_from(n).unwrap_or(0)) }
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    // SAFETY: `p` came from `x_malloc`/`x_realloc` (or is null, which mi_free accepts).
    unsafe { mi::mi_free(p) }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    // SAFETY: as `x_free`.
    unsafe { mi::mi_realloc(p, usize::try_from(n).unwrap_or(0)) }
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: `p` is a live mimalloc block.
    let n = unsafe { mi::mi_usable_size(p) };
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    n.saturating_add(7) & !7
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// Turns the query planner stability guarantee on for one connection.
pub async fn stable_plans(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: a valid open handle, locked for this thread; the option takes an int and an
    // optional int pointer.
    let rc = unsafe {
        ffi::sqlite3_db_config(
            handle.as_raw_handle().as_ptr(),
            ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as c_int,
            std::ptr::null_mut::<c_int>(),
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(sqlx::Error::Protocol(format!(
            "cannot enable SQLite's query planner stability guarantee (code {rc})"
        )))
    }
}

/// Installs the allocator, once, before SQLite first initialises. When SQLite is already
/// initialised (something opened a database first) it keeps its defaults: `sqlite3_config`
/// refuses, harmlessly.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(x_malloc),
            xFree: Some(x_free),
            xRealloc: Some(x_realloc),
            xSize: Some(x_size),
            xRoundup: Some(x_roundup),
            xInit: Some(x_init),
            xShutdown: Some(x_shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: both calls happen before any SQLite use in this process or are refused with
        // SQLITE_MISUSE; SQLite copies `methods` before returning.
        unsafe {
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_MALLOC,
                &methods as *const ffi::sqlite3_mem_methods,
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use crate::db::{Db, Sql};

    #[tokio::test]
    async fn sqlite_runs_on_the_installed_settings() {
        let db = Db::connect("sqlite::memory:", 1).await.expect("open");
        let n = db
            .fetch_int(&Sql::new("SELECT COUNT(*) FROM (SELECT 1 UNION SELECT 2)"))
            .await
            .expect("query");
        assert_eq!(n, 2);
        // Allocation statistics are off: SQLite counts nothing, so it takes no mutex for them.
        // SAFETY: a plain read of a counter.
        assert_eq!(unsafe { super::ffi::sqlite3_memory_used() }, 0);
        let Db::Sqlite(pool, _) = &db else {
            panic!("not SQLite")
        };
        let mut conn = pool.acquire().await.expect("connection");
        let mut handle = conn.lock_handle().await.expect("handle");
        let mut on: std::os::raw::c_int = 0;
        // SAFETY: reads the option back into `on`.
        unsafe {
            super::ffi::sqlite3_db_config(
                handle.as_raw_handle().as_ptr(),
                super::ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
                -1,
                &mut on as *mut std::os::raw::c_int,
            );
        }
        assert_eq!(on, 1, "query planner stability guarantee");
    }
}
