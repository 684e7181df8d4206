//! The storage layer on both engines: one query text, NULLs and values in any order, time and
//! boolean round trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use mojo_server::db::{now, Sql, Val};

both!(
    nulls_and_values_share_placeholders,
    |app: common::TestApp| async move {
        let db = &app.state.db;
        db.execute(&Sql::new(
        "CREATE TABLE storage_probe (a BIGINT, b DOUBLE PRECISION, c TIMESTAMP WITH TIME ZONE, d BOOLEAN, e TEXT)",
    ))
    .await
    .unwrap();
        let insert = "INSERT INTO storage_probe (a, b, c, d, e) VALUES ($1, $2, $3, $4, $5)";
        // NULLs first: the statement is prepared with types inferred from the columns.
        db.execute(
            &Sql::new(insert)
                .arg(Val::Null)
                .arg(Val::Null)
                .arg(Val::Null)
                .arg(Val::Null)
                .arg(Val::Null),
        )
        .await
        .unwrap();
        let t = now();
        db.execute(
            &Sql::new(insert)
                .arg(7i64)
                .arg(1.5f64)
                .arg(t)
                .arg(true)
                .arg("x"),
        )
        .await
        .unwrap();
        db.execute(
            &Sql::new(insert)
                .arg(None::<i64>)
                .arg(2.5f64)
                .arg(None::<chrono::DateTime<chrono::Utc>>)
                .arg(false)
                .arg(None::<String>),
        )
        .await
        .unwrap();
        let rows = db
            .fetch_all(&Sql::new(
                "SELECT a, b, c, d, e FROM storage_probe ORDER BY b NULLS FIRST",
            ))
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].opt_int("a").unwrap(), None);
        assert_eq!(rows[1].int("a").unwrap(), 7);
        assert_eq!(rows[1].time("c").unwrap(), t);
        assert!(rows[1].bool("d").unwrap());
        assert_eq!(rows[2].opt_float("b").unwrap(), Some(2.5));
        assert!(!rows[2].bool("d").unwrap());
        assert_eq!(rows[2].opt_text("e").unwrap(), None);
        app
    }
);
