//! Pools, servers and switches through HTTP on both backends: the guide's examples verbatim,
//! the assignment rules and group-scoped visibility.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use mojo_server::db::servers::{
    upsert_from_inventory, EthernetInput, FirmwareInput, ProcessorInput, ServerInventory,
    StorageInput,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// An inventory as registration would read it.
fn inventory(
    uuid: &str,
    serial: Option<&str>,
    host: Option<&str>,
    maker: &str,
    model: &str,
    power: &str,
) -> ServerInventory {
    ServerInventory {
        uuid: Some(uuid.into()),
        serial_number: serial.map(Into::into),
        manufacturer: Some(maker.into()),
        model: Some(model.into()),
        sku: Some(format!("SKU-{uuid}")),
        bios_version: Some("2.1.0".into()),
        power_state: Some(power.into()),
        hostname: host.map(Into::into),
        memory_gib: Some(256.0),
        processor_count: Some(2),
        health: Some("OK".into()),
        processors: (1..=2)
            .map(|i| ProcessorInput {
                socket: Some(format!("CPU.Socket.{i}")),
                manufacturer: Some("Intel(R) Corporation".into()),
                model: Some("Xeon Gold 6230".into()),
                architecture: Some("x86-64".into()),
                total_cores: Some(20),
                total_threads: Some(40),
                max_speed_mhz: Some(3900),
            })
            .collect(),
        ethernet_interfaces: (1..=4)
            .map(|i| EthernetInput {
                name: Some(format!("NIC.Integrated.1-{i}")),
                mac_address: Some(format!("aa:bb:cc:dd:ee:0{i}")),
                speed_mbps: Some(10000),
                link_status: Some("LinkUp".into()),
                ipv4_addresses: vec![format!("192.0.2.{i}")],
            })
            .collect(),
        storages: vec![StorageInput {
            name: Some("RAID.Integrated.1-1".into()),
            controllers: vec![json!({"name": "PERC H740P", "firmware_version": "51.13"})],
            drives: (0..8)
                .map(|i| json!({"name": format!("Disk {i}"), "capacity_bytes": 960_000_000_000u64}))
                .collect(),
            volumes: vec![json!({"name": "VD0", "raid_type": "RAID1"})],
        }],
        firmwares: vec![
            FirmwareInput {
                name: Some("BIOS".into()),
                version: Some("2.1.0".into()),
                component_id: Some("Installed-159-2.1.0".into()),
                updateable: true,
                firmware_type: Some("BIOS".into()),
            },
            FirmwareInput {
                name: Some("Integrated Dell Remote Access Controller".into()),
                version: Some("6.10".into()),
                component_id: Some("iDRAC".into()),
                updateable: true,
                firmware_type: Some("BMC".into()),
            },
        ],
    }
}

/// Four servers (ids 1-4, nodes 101-104), registered through the inventory API:
/// 1 Dell PowerEdge R740 On "web-01"; 2 Dell PowerEdge R640 Off, host `localhost` (named by
/// serial); 3 HPE ProLiant On, no host name or serial (named `server-3`); 4 Dell PowerEdge R750 On.
async fn seed(app: &common::TestApp) {
    let mut tx = app.state.db.begin().await.expect("begin");
    let invs = [
        inventory(
            "uuid-1",
            Some("SN-A1"),
            Some("web-01"),
            "Dell Inc.",
            "PowerEdge R740",
            "On",
        ),
        inventory(
            "uuid-2",
            Some("sn-b2"),
            Some("localhost.localdomain"),
            "Dell Inc.",
            "PowerEdge R640",
            "Off",
        ),
        inventory("uuid-3", None, None, "HPE", "ProLiant DL380 Gen10", "On"),
        inventory(
            "uuid-4",
            Some("SN-D4"),
            Some("db-01"),
            "Dell Inc.",
            "PowerEdge R750",
            "On",
        ),
    ];
    for (i, inv) in invs.iter().enumerate() {
        let node = 101 + i as i64;
        let id = upsert_from_inventory(&mut tx, node, &format!("https://127.0.0.{}", i + 10), inv)
            .await
            .expect("upsert");
        assert_eq!(id, i as i64 + 1);
    }
    tx.commit().await.expect("commit");
}

fn ids(v: &Value) -> Vec<i64> {
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|s| s["id"].as_i64().expect("id"))
        .collect()
}

async fn create_pool(app: &common::TestApp, body: Value) -> i64 {
    let (s, b) = app.post("/api/pool/", body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["id"].as_i64().expect("id")
}

both!(guide_server_lists, |app: common::TestApp| async move {
    seed(&app).await;
    let a = create_pool(&app, json!({"name": "Production Servers", "description": "Production environment servers", "group": 1})).await;
    assert_eq!(a, 1);
    let (s, _) = app
        .post("/api/pool/1/assign_servers/", json!({"servers": [1, 2, 3]}))
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, b) = app.get("/api/server/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["count"], 4);
    assert_eq!(b["next"], Value::Null);
    let first = &b["results"][0];
    assert_eq!(first["name"], "web-01");
    assert_eq!(first["resource_pool"], 1);
    assert_eq!(first["resource_pool_name"], "Production Servers");
    assert_eq!(first["node"], 101);
    assert_eq!(first["bmc_url"], "https://127.0.0.10");
    assert_eq!(first["uuid"], "uuid-1");
    assert_eq!(first["memory_gib"], 256.0);
    assert_eq!(b["results"][1]["name"], "sn-b2");
    assert_eq!(b["results"][2]["name"], "server-3");

    let (_, b) = app.get("/api/server/?search=PowerEdge").await;
    assert_eq!(ids(&b), vec![1, 2, 4]);
    let (_, b) = app.get("/api/server/?search=poweredge%20r7").await;
    assert_eq!(ids(&b), vec![1, 4]);
    let (_, b) = app.get("/api/server/?resource_pool=1").await;
    assert_eq!(ids(&b), vec![1, 2, 3]);
    let (_, b) = app.get("/api/server/?resource_pool=null").await;
    assert_eq!(ids(&b), vec![4]);
    let (_, b) = app.get("/api/server/?power_state=On").await;
    assert_eq!(ids(&b), vec![1, 3, 4]);
    let (_, b) = app.get("/api/server/?ordering=name").await;
    assert_eq!(ids(&b), vec![4, 3, 2, 1]);
    let (_, b) = app.get("/api/server/?ordering=-manufacturer").await;
    assert_eq!(ids(&b), vec![3, 1, 2, 4]);
    let (_, b) = app.get("/api/server/?ordering=resource_pool__name").await;
    assert_eq!(ids(&b), vec![1, 2, 3, 4]);
    let (_, b) = app.get("/api/server/?ordering=-resource_pool__name").await;
    assert_eq!(ids(&b), vec![4, 1, 2, 3]);
    let (_, b) = app
        .get("/api/server/?search=Dell&resource_pool=1&ordering=name")
        .await;
    assert_eq!(ids(&b), vec![2, 1]);
    let (_, b) = app.get("/api/server/?manufacturer=HPE").await;
    assert_eq!(ids(&b), vec![3]);

    let (s, b) = app.get("/api/server/?page=1&page_size=3").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["count"], 4);
    assert_eq!(ids(&b), vec![1, 2, 3]);
    assert!(
        b["next"]
            .as_str()
            .expect("next")
            .ends_with("/api/server/?page=2&page_size=3"),
        "{b}"
    );
    assert_eq!(b["previous"], Value::Null);
    let (_, b) = app
        .get("/api/server/?search=PowerEdge&ordering=-id&page_size=10")
        .await;
    assert_eq!(ids(&b), vec![4, 2, 1]);

    let (s, b) = app.get("/api/server/?resource_pool=999").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"resource_pool": ["Select a valid choice. That choice is not one of the available choices."]})
    );
    let (s, b) = app.get("/api/server/?power_state=Sleeping").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["power_state"].is_array(), "{b}");

    let (s, b) = app.get("/api/server/42/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b, json!({"detail": "No Server matches the given query."}));
    let (s, _) = app.get("/api/server/abc/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = app.post("/api/server/", json!({"name": "x"})).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{b}");

    let (s, b) = app.get("/api/server/1/processors/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b.as_array().map(Vec::len), Some(2));
    assert_eq!(b[0]["socket"], "CPU.Socket.1");
    assert_eq!(b[0]["total_cores"], 20);
    let (_, b) = app.get("/api/server/1/ethernet_interfaces/").await;
    assert_eq!(b.as_array().map(Vec::len), Some(4));
    assert_eq!(b[0]["ipv4_addresses"], json!(["192.0.2.1"]));
    let (_, b) = app.get("/api/server/1/storages/").await;
    assert_eq!(b[0]["drives"].as_array().map(Vec::len), Some(8));
    assert_eq!(b[0]["controllers"][0]["name"], "PERC H740P");
    let (_, b) = app.get("/api/server/1/firmwares/").await;
    assert_eq!(b[0]["firmware_type"], "BIOS");
    assert_eq!(b[1]["firmware_type"], "BMC");
    assert_eq!(b[1]["updateable"], true);
    let (s, _) = app.get("/api/server/99/firmwares/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app
});

both!(
    inventory_upsert_keeps_identity_pool_and_name,
    |app: common::TestApp| async move {
        seed(&app).await;
        let (s, b) = app
            .patch(
                "/api/server/1/",
                json!({"name": "my-web", "resource_pool": null}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let p = create_pool(&app, json!({"name": "P", "group": 1})).await;
        let (s, b) = app
            .patch("/api/server/1/", json!({"resource_pool": p}))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["name"], "my-web");

        // Same UUID from a BMC at a new address: the same server, name and pool kept.
        let mut inv = inventory(
            "uuid-1",
            Some("SN-A1"),
            Some("web-renamed"),
            "Dell Inc.",
            "PowerEdge R740",
            "Off",
        );
        inv.processors.truncate(1);
        let mut tx = app.state.db.begin().await.expect("begin");
        let id = upsert_from_inventory(&mut tx, 201, "https://127.0.0.99", &inv)
            .await
            .expect("upsert");
        // No UUID: found by serial number; the host name rule applies to a server never renamed.
        let mut by_serial = inventory(
            "x",
            Some("SN-D4"),
            Some("db-02"),
            "Dell Inc.",
            "PowerEdge R750",
            "On",
        );
        by_serial.uuid = None;
        let id4 = upsert_from_inventory(&mut tx, 104, "https://127.0.0.13", &by_serial)
            .await
            .expect("upsert");
        tx.commit().await.expect("commit");
        assert_eq!((id, id4), (1, 4));
        let (_, b) = app.get("/api/server/1/").await;
        assert_eq!(b["name"], "my-web");
        assert_eq!(b["resource_pool"], p);
        assert_eq!(b["bmc_url"], "https://127.0.0.99");
        assert_eq!(b["node"], 201);
        assert_eq!(b["power_state"], "Off");
        assert!(b["last_inventory_at"].is_string());
        let (_, b) = app.get("/api/server/1/processors/").await;
        assert_eq!(b.as_array().map(Vec::len), Some(1));
        let (_, b) = app.get("/api/server/4/").await;
        assert_eq!(b["name"], "db-02");
        let (_, b) = app.get("/api/server/").await;
        assert_eq!(b["count"], 4);

        let (s, b) = app.put("/api/server/2/", json!({"resource_pool": p})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(b, json!({"name": ["This field is required."]}));
        let (s, b) = app
            .patch("/api/server/2/", json!({"resource_pool": 77, "name": ""}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            b,
            json!({"name": ["This field may not be blank."], "resource_pool": ["Invalid pk \"77\" - object does not exist."]})
        );
        let (s, b) = app
            .patch("/api/server/2/", json!({"name": "x".repeat(256)}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            b,
            json!({"name": ["Ensure this field has no more than 255 characters."]})
        );

        let (s, _) = app.delete("/api/server/3/").await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, b) = app.get("/api/server/3/").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(b, json!({"detail": "No Server matches the given query."}));
        let (_, b) = app.get("/api/server/3/storages/").await;
        assert_eq!(b, json!({"detail": "No Server matches the given query."}));
        app
    }
);

both!(guide_pool_management, |app: common::TestApp| async move {
    seed(&app).await;
    let (s, b) = app
        .post("/api/pool/", json!({"name": "Production Servers", "description": "Production environment servers", "group": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        b,
        json!({"id": 1, "name": "Production Servers", "description": "Production environment servers", "group": 1,
               "parent": null, "sub_pools": [], "servers_count": 0, "switches_count": 0, "firmware_baseline": null})
    );
    let (s, b) = app.get("/api/pool/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["count"], 1);

    let (s, b) = app
        .post("/api/pool/1/assign_servers/", json!({"servers": [1, 2, 3]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["servers_count"], 3);
    assert_eq!(b["servers"].as_array().map(Vec::len), Some(3));
    // Assigning again is a no-op.
    let (s, _) = app
        .post("/api/pool/1/assign_servers/", json!({"servers": [1]}))
        .await;
    assert_eq!(s, StatusCode::OK);

    let b_id = create_pool(&app, json!({"name": "Staging", "group": 1})).await;
    let assign_b = format!("/api/pool/{b_id}/assign_servers/");
    // Atomic: server 4 (node 104) is free, server 1 is not: nothing changes.
    let (s, b) = app.post(&assign_b, json!({"servers": [104, 1]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"servers": ["Server 1 (web-01) is already in pool 1 (Production Servers)."]})
    );
    let (_, b) = app.get("/api/server/4/").await;
    assert_eq!(b["resource_pool"], Value::Null);
    let (s, b) = app.post(&assign_b, json!({"servers": [9]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"servers": ["Invalid pk \"9\" - object does not exist."]})
    );
    let (s, b) = app.post(&assign_b, json!({"servers": []})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b, json!({"servers": ["This list may not be empty."]}));
    let (s, b) = app.post(&assign_b, json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b, json!({"servers": ["This field is required."]}));
    // A node id stands for its server.
    let (s, b) = app.post(&assign_b, json!({"servers": [104]})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["servers"][0]["id"], 4);
    let (s, _) = app
        .post("/api/pool/77/assign_servers/", json!({"servers": [4]}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The guide's PATCH of a server's pool, and remove_from_pool.
    let (s, b) = app
        .patch("/api/server/2/", json!({"resource_pool": b_id}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["resource_pool"], b_id);
    let (s, b) = app
        .post("/api/server/remove_from_pool/", json!({"servers": [1, 2]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, b) = app.get("/api/server/?resource_pool=null").await;
    assert_eq!(ids(&b), vec![1, 2]);
    let (s, b) = app
        .post("/api/server/remove_from_pool/", json!({"servers": [1, 55]}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"servers": ["Invalid pk \"55\" - object does not exist."]})
    );

    // Switches.
    let (s, b) = app
        .post(
            "/api/switch/",
            json!({"name": "tor-1", "model": "S5248F", "management_ip": "192.0.2.254"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app
        .post(
            "/api/switch/",
            json!({"name": "tor-2", "management_ip": "nope"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"management_ip": ["Enter a valid IPv4 or IPv6 address."]})
    );
    let (s, b) = app.post("/api/switch/", json!({"name": "tor-2"})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app
        .post("/api/pool/1/assign_switches/", json!({"switches": [1, 2]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["switches_count"], 2);
    assert_eq!(b["switches"][0]["name"], "tor-1");
    let (s, b) = app
        .post(
            &format!("/api/pool/{b_id}/assign_switches/"),
            json!({"switches": [2]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"switches": ["Switch 2 (tor-2) is already in pool 1 (Production Servers)."]})
    );
    let (_, b) = app.get("/api/switch/?resource_pool=1&ordering=-name").await;
    assert_eq!(ids(&b), vec![2, 1]);

    // Sub-pools.
    let (s, b) = app
        .post(
            "/api/pool/1/create_sub_pool/",
            json!({"name": "Linux Servers", "description": "Linux production servers"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let sub = b["id"].as_i64().expect("id");
    assert_eq!(b["parent"], 1);
    assert_eq!(b["group"], 1);
    let (_, b) = app.get("/api/pool/1/").await;
    assert_eq!(
        b["sub_pools"],
        json!([{"id": sub, "name": "Linux Servers"}])
    );
    assert_eq!(b["servers_count"], 1);
    let (_, b) = app.get("/api/pool/?parent=1").await;
    assert_eq!(ids(&b), vec![sub]);
    let (_, b) = app.get("/api/pool/?parent=null&ordering=-name").await;
    assert_eq!(ids(&b), vec![b_id, 1]);
    let (_, b) = app.get("/api/pool/?search=linux").await;
    assert_eq!(ids(&b), vec![sub]);
    let (s, b) = app
        .post(
            "/api/pool/1/create_sub_pool/",
            json!({"name": "Linux Servers"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"name": ["pool with this name already exists under this parent."]})
    );
    // The same name elsewhere in the tree is fine.
    let (s, _) = app
        .post(
            &format!("/api/pool/{b_id}/create_sub_pool/"),
            json!({"name": "Linux Servers"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = app
        .post("/api/pool/", json!({"name": "Staging", "group": 1}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"name": ["pool with this name already exists under this parent."]})
    );
    let (s, b) = app.post("/api/pool/", json!({"name": "No group"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b, json!({"group": ["This field is required."]}));
    let (s, b) = app
        .post(
            "/api/pool/",
            json!({"name": "Bad group", "group": 42, "description": "d".repeat(1001)}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"description": ["Ensure this field has no more than 1000 characters."], "group": ["Invalid pk \"42\" - object does not exist."]})
    );

    // The guide's PUT; PUT never un-nests a sub-pool.
    let (s, b) = app
        .put(
            "/api/pool/1/",
            json!({"name": "Updated Pool Name", "description": "New description", "group": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["name"], "Updated Pool Name");
    let (s, b) = app
        .put(
            &format!("/api/pool/{sub}/"),
            json!({"name": "Linux", "description": "x", "parent": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["parent"], 1);
    let (s, b) = app
        .put("/api/pool/1/", json!({"name": "Updated Pool Name"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b, json!({"group": ["This field is required."]}));

    // Cycles.
    let (s, b) = app.patch("/api/pool/1/", json!({"parent": sub})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"parent": ["A pool cannot be moved under itself or one of its sub-pools."]})
    );
    let (s, _) = app.patch("/api/pool/1/", json!({"parent": 1})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, b) = app
        .patch(&format!("/api/pool/{sub}/"), json!({"parent": b_id}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["parent"], b_id);
    let (s, b) = app
        .patch(&format!("/api/pool/{sub}/"), json!({"parent": null}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["parent"], Value::Null);
    let (s, _) = app
        .patch(&format!("/api/pool/{sub}/"), json!({"parent": 1}))
        .await;
    assert_eq!(s, StatusCode::OK);

    // Delete: refused with sub-pools; members become unassigned.
    let (s, b) = app.delete("/api/pool/1/").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"detail": "Pool 1 has sub-pools; delete or move them first."})
    );
    let (s, _) = app.delete(&format!("/api/pool/{sub}/")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.delete("/api/pool/1/").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app.get("/api/pool/1/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b, json!({"detail": "No Pool matches the given query."}));
    let (_, b) = app.get("/api/server/3/").await;
    assert_eq!(b["resource_pool"], Value::Null);
    let (_, b) = app.get("/api/switch/1/").await;
    assert_eq!(b["resource_pool"], Value::Null);
    // Group 1 cannot lose a group that pools use.
    app
});

async fn group(app: &common::TestApp, name: &str) -> i64 {
    let (s, b) = app.post("/api/groups/", json!({"name": name})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["id"].as_i64().expect("id")
}

both!(group_access, |app: common::TestApp| async move {
    seed(&app).await;
    let red = group(&app, "red").await;
    let blue = group(&app, "blue").await;
    let r = create_pool(&app, json!({"name": "R", "group": red})).await;
    let (_, b) = app
        .post(
            &format!("/api/pool/{r}/create_sub_pool/"),
            json!({"name": "R-sub", "group": blue}),
        )
        .await;
    let rsub = b["id"].as_i64().expect("id");
    let (_, b) = app
        .post(
            &format!("/api/pool/{rsub}/create_sub_pool/"),
            json!({"name": "R-sub-sub"}),
        )
        .await;
    let rsubsub = b["id"].as_i64().expect("id");
    assert_eq!(b["group"], blue);
    let bp = create_pool(&app, json!({"name": "B", "group": blue})).await;
    for (pool, server) in [(r, 1), (rsub, 2), (bp, 3)] {
        let (s, _) = app
            .post(
                &format!("/api/pool/{pool}/assign_servers/"),
                json!({"servers": [server]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (_, alice) = app.user("alice", &[red]).await;
    let (_, bob) = app.user("bob", &[blue]).await;
    let get = |path: String, token: String| {
        let app = &app;
        async move { app.call(Method::GET, &path, None, Some(&token)).await }
    };

    // Alice sees R and, through it, R's whole subtree; Bob sees B and R-sub (its group) with its child.
    let (_, b) = get("/api/pool/".into(), alice.clone()).await;
    assert_eq!(ids(&b), vec![r, rsub, rsubsub]);
    let (_, b) = get("/api/pool/".into(), bob.clone()).await;
    assert_eq!(ids(&b), vec![rsub, rsubsub, bp]);
    let (s, b) = get(format!("/api/pool/{bp}/"), alice.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b, json!({"detail": "No Pool matches the given query."}));
    let (s, _) = get(format!("/api/pool/{rsubsub}/"), alice.clone()).await;
    assert_eq!(s, StatusCode::OK);

    let (_, b) = get("/api/server/".into(), alice.clone()).await;
    assert_eq!(ids(&b), vec![1, 2]);
    let (_, b) = get("/api/server/".into(), bob.clone()).await;
    assert_eq!(ids(&b), vec![2, 3]);
    let (_, b) = get(
        "/api/server/?search=PowerEdge&ordering=-id&page_size=10".into(),
        alice.clone(),
    )
    .await;
    assert_eq!(b["count"], 2);
    let (s, b) = get("/api/server/3/".into(), alice.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b, json!({"detail": "No Server matches the given query."}));
    let (s, _) = get("/api/server/3/storages/".into(), alice.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = get("/api/server/4/".into(), alice.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = get(format!("/api/server/?resource_pool={bp}"), alice.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"resource_pool": ["Select a valid choice. That choice is not one of the available choices."]})
    );
    let (s, b) = get(format!("/api/pool/?parent={bp}"), alice.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, _) = get(format!("/api/server/?resource_pool={rsub}"), alice.clone()).await;
    assert_eq!(s, StatusCode::OK);
    // Bob sees R-sub, a child of R, but not R: naming R as a filter is refused even though a
    // pool he sees matches it, paginated or not.
    for q in ["", "&page_size=5", "&page=last&page_size=5"] {
        let (s, b) = get(format!("/api/pool/?parent={r}{q}"), bob.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {b}");
    }
    let (s, b) = get(format!("/api/pool/?parent={rsub}&page_size=5"), bob.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids(&b), vec![rsubsub]);

    let call = |m: Method, path: String, body: Value, token: String| {
        let app = &app;
        async move { app.call(m, &path, Some(body), Some(&token)).await }
    };
    // No assignment into or out of a pool Alice cannot see.
    let (s, _) = call(
        Method::POST,
        format!("/api/pool/{bp}/assign_servers/"),
        json!({"servers": [4]}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = call(
        Method::POST,
        format!("/api/pool/{r}/assign_servers/"),
        json!({"servers": [3]}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"servers": ["Invalid pk \"3\" - object does not exist."]})
    );
    let (s, b) = call(
        Method::POST,
        format!("/api/pool/{r}/assign_servers/"),
        json!({"servers": [2]}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"servers": ["Server 2 (sn-b2) is already in pool 2 (R-sub)."]})
    );
    // Server 4 is unassigned, so not in Alice's server list (404 above): she cannot assign it,
    // neither by its id nor through its node (104), and the answer is the one a nonexistent id
    // gets (issue 9, item 1).
    for id in [4, 104, 999_999] {
        let (s, b) = call(
            Method::POST,
            format!("/api/pool/{r}/assign_servers/"),
            json!({"servers": [id]}),
            alice.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{id}: {b}");
        assert_eq!(
            b,
            json!({"servers": [format!("Invalid pk \"{id}\" - object does not exist.")]})
        );
    }
    let (_, b) = get("/api/server/4/".into(), app.token.clone()).await;
    assert_eq!(b["resource_pool"], Value::Null, "nothing moved: {b}");
    // A server she sees, named by its node (101 stands for server 1, in R): accepted.
    let (s, b) = call(
        Method::POST,
        format!("/api/pool/{r}/assign_servers/"),
        json!({"servers": [101]}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The superuser still assigns unassigned servers, also through their node.
    let (s, b) = app
        .post(
            &format!("/api/pool/{r}/assign_servers/"),
            json!({"servers": [104]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = call(
        Method::PATCH,
        "/api/server/1/".into(),
        json!({"resource_pool": bp}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"resource_pool": [format!("Invalid pk \"{bp}\" - object does not exist.")]})
    );
    let (s, b) = call(
        Method::PATCH,
        "/api/server/1/".into(),
        json!({"resource_pool": rsubsub}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = call(
        Method::POST,
        "/api/server/remove_from_pool/".into(),
        json!({"servers": [3]}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"servers": ["Invalid pk \"3\" - object does not exist."]})
    );
    let (s, _) = call(
        Method::DELETE,
        "/api/server/1/".into(),
        json!({}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Pools only with one's own groups.
    let (s, b) = call(
        Method::POST,
        "/api/pool/".into(),
        json!({"name": "A2", "group": blue}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"group": [format!("Invalid pk \"{blue}\" - object does not exist.")]})
    );
    let (s, b) = call(
        Method::POST,
        "/api/pool/".into(),
        json!({"name": "A2", "group": red}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, _) = call(
        Method::DELETE,
        format!("/api/pool/{bp}/"),
        json!({}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        Method::PATCH,
        format!("/api/pool/{bp}/"),
        json!({"name": "mine"}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Switches follow their pool.
    let (s, b) = call(
        Method::POST,
        "/api/switch/".into(),
        json!({"name": "sw-a"}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b, json!({"resource_pool": ["This field is required."]}));
    let (s, b) = call(
        Method::POST,
        "/api/switch/".into(),
        json!({"name": "sw-a", "resource_pool": r}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, b) = get("/api/switch/".into(), bob.clone()).await;
    assert_eq!(b["count"], 0);
    let (s, _) = get("/api/switch/1/".into(), bob.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // An unassigned switch is not in Alice's switch list: not hers to assign either.
    let (s, b) = app.post("/api/switch/", json!({"name": "sw-free"})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let free = b["id"].as_i64().unwrap();
    let (s, b) = call(
        Method::POST,
        format!("/api/pool/{r}/assign_switches/"),
        json!({"switches": [free]}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(
        b,
        json!({"switches": [format!("Invalid pk \"{free}\" - object does not exist.")]})
    );
    let (s, b) = call(
        Method::POST,
        format!("/api/pool/{r}/assign_switches/"),
        json!({"switches": [1]}),
        alice.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let (s, _) = app.call(Method::GET, "/api/pool/", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    app
});

both!(
    malformed_inputs_never_500,
    |app: common::TestApp| async move {
        seed(&app).await;
        let p = create_pool(&app, json!({"name": "P", "group": 1})).await;
        let assign = format!("/api/pool/{p}/assign_servers/");
        let (s, b) = app.post(&assign, json!([1, 2])).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            b,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        );
        let (s, _) = app.post(&assign, json!({"servers": "abc"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = app.post(&assign, json!({"servers": [{"id": 1}]})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let many: Vec<i64> = (1..=10_001).collect();
        let (s, b) = app.post(&assign, json!({"servers": many})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            b,
            json!({"servers": ["Ensure this field has no more than 10000 elements."]})
        );
        let (s, b) = app.post(&assign, json!({"servers": [i64::MAX]})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            b,
            json!({"servers": [format!("Invalid pk \"{}\" - object does not exist.", i64::MAX)]})
        );
        let (s, _) = app
            .post("/api/pool/", json!({"name": "a\u{0}b", "group": 1}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = app
            .patch(
                &format!("/api/pool/{p}/"),
                json!({"parent": "x", "group": true}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        for q in ["resource_pool=abc", "search=%00", "power_state=on"] {
            let (s, b) = app.get(&format!("/api/server/?{q}")).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {b}");
        }
        let (s, b) = app
            .get("/api/server/?ordering=bogus,-name&page=1&page_size=0")
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, _) = app.get("/api/server/?page=9&page_size=2").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // Form bodies work like JSON (DRF's parsers): repeated keys make the list.
        let resp = app
            .req(Method::POST, &assign)
            .form(&[("servers", "1"), ("servers", "2")])
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), StatusCode::OK);
        let (_, b) = app.get(&format!("/api/pool/{p}/")).await;
        assert_eq!(b["servers_count"], 2);
        app
    }
);

both!(list_engine_edges, |app: common::TestApp| async move {
    seed(&app).await;
    let a = create_pool(&app, json!({"name": "A", "group": 1})).await;
    let empty = create_pool(&app, json!({"name": "Empty", "group": 1})).await;
    let (s, _) = app
        .post(
            &format!("/api/pool/{a}/assign_servers/"),
            json!({"servers": [1, 3]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Server 3 has no serial number: NULLs sort last ascending, first descending, and a row
    // whose sort key is NULL is never mistaken for "no row".
    for (q, want) in [
        ("ordering=id,serial_number&page_size=10", vec![1, 2, 3, 4]),
        ("ordering=serial_number&page_size=10", vec![1, 4, 2, 3]),
        ("ordering=-serial_number&page_size=10", vec![3, 2, 4, 1]),
        ("ordering=-serial_number", vec![3, 2, 4, 1]),
    ] {
        let (s, b) = app.get(&format!("/api/server/?{q}")).await;
        assert_eq!(s, StatusCode::OK, "{q}: {b}");
        let got = ids(&b);
        assert_eq!(got.len(), 4, "{q}: {b}");
        assert_eq!(got.first(), want.first(), "{q}");
        assert_eq!(got.last(), want.last(), "{q}");
    }

    // An existing but empty pool: an empty page, not an error, with or without pagination.
    for q in ["", "&page_size=5", "&page=1", "&page=last&page_size=5"] {
        let (s, b) = app
            .get(&format!("/api/server/?resource_pool={empty}{q}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{q}: {b}");
        assert_eq!(b["count"], 0, "{q}");
        assert_eq!(b["results"], json!([]), "{q}");
    }

    // Every filter error at once, in declaration order; filter errors come before page errors.
    let (s, b) = app
        .get("/api/server/?power_state=bogus&resource_pool=999&page=7&page_size=2")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let keys: Vec<&String> = b.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["resource_pool", "power_state"], "{b}");
    let (s, _) = app
        .get("/api/server/?resource_pool=999&page=last&page_size=2")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app
        .get(&format!(
            "/api/server/?resource_pool={a}&page=3&page_size=1"
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .get(&format!(
            "/api/server/?resource_pool={a}&page=0&page_size=1"
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // `last`, and `page` alone (everything in one page: only page 1 exists).
    let (s, b) = app
        .get(&format!(
            "/api/server/?resource_pool={a}&page=last&page_size=1"
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!((b["count"].clone(), ids(&b)), (json!(2), vec![3]));
    assert!(b["next"].is_null());
    let previous = b["previous"].as_str().expect("previous");
    assert!(
        previous.ends_with(&format!("?page_size=1&resource_pool={a}")),
        "{previous}"
    );
    let (_, b) = app
        .get(&format!("/api/server/?resource_pool={a}&page=1"))
        .await;
    assert_eq!((b["count"].clone(), ids(&b)), (json!(2), vec![1, 3]));
    let (s, _) = app
        .get(&format!("/api/server/?resource_pool={a}&page=2"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Search: ASCII terms fold ASCII case; other terms fold Unicode case, on both engines.
    let (_, b) = app.get("/api/server/?search=POWEREDGE%20r7").await;
    assert_eq!(ids(&b), vec![1, 4]);
    let (_, b) = app.get("/api/server/?search=%C3%89").await;
    assert_eq!(ids(&b), Vec::<i64>::new());
    let (s, _) = app
        .patch("/api/server/3/", json!({"name": "Gerät-Ä"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, b) = app.get("/api/server/?search=ger%C3%A4t-%C3%A4").await;
    assert_eq!(ids(&b), vec![3]);
    let (_, b) = app.get("/api/server/?search=GER%C3%84T").await;
    assert_eq!(ids(&b), vec![3]);
    app
});

both!(
    identity_changes_apply_at_once,
    |app: common::TestApp| async move {
        seed(&app).await;
        let (_, b) = app.post("/api/groups/", json!({"name": "ops"})).await;
        let ops = b["id"].as_i64().expect("id");
        let p = create_pool(&app, json!({"name": "Ops pool", "group": ops})).await;
        create_pool(&app, json!({"name": "Default pool", "group": 1})).await;
        let (carol, token) = app.user("carol", &[]).await;
        let get = |path: &'static str| {
            let (app, token) = (&app, token.clone());
            async move { app.call(Method::GET, path, None, Some(&token)).await }
        };
        let (_, b) = get("/api/pool/").await;
        assert_eq!(ids(&b), Vec::<i64>::new());
        // Joining a group (through the user) shows its pools on the very next request.
        let (s, _) = app
            .patch(&format!("/api/users/{carol}/"), json!({"groups": [ops]}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (_, b) = get("/api/pool/").await;
        assert_eq!(ids(&b), vec![p]);
        // Leaving it (through the group) hides them again.
        let (s, _) = app
            .patch(&format!("/api/groups/{ops}/"), json!({"users": []}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (_, b) = get("/api/pool/").await;
        assert_eq!(ids(&b), Vec::<i64>::new());
        // Made superuser: sees everything at once; deactivated: refused at once.
        let (s, _) = app
            .patch(
                &format!("/api/users/{carol}/"),
                json!({"is_superuser": true}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (_, b) = get("/api/pool/").await;
        assert_eq!(b["count"], 2);
        let (s, _) = app
            .patch(&format!("/api/users/{carol}/"), json!({"is_active": false}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = get("/api/pool/").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        app
    }
);

both!(switch_crud, |app: common::TestApp| async move {
    let (s, b) = app
        .post("/api/switch/", json!({"name": "spine-1", "manufacturer": "Arista", "serial_number": "JPE1", "management_ip": "192.0.2.9"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["resource_pool"], Value::Null);
    assert!(b["created_at"].is_string());
    let (s, b) = app
        .patch(
            "/api/switch/1/",
            json!({"name": "spine-01", "management_ip": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["name"], "spine-01");
    assert_eq!(b["management_ip"], Value::Null);
    assert_eq!(b["manufacturer"], "Arista");
    let (s, b) = app.put("/api/switch/1/", json!({"model": "7050X"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b, json!({"name": ["This field is required."]}));
    let p = create_pool(&app, json!({"name": "Net", "group": 1})).await;
    let (s, b) = app
        .put(
            "/api/switch/1/",
            json!({"name": "spine-01", "model": "7050X", "resource_pool": p}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["resource_pool"], p);
    let (_, b) = app.get("/api/switch/?search=arista").await;
    assert_eq!(ids(&b), vec![1]);
    let (_, b) = app.get(&format!("/api/pool/{p}/")).await;
    assert_eq!(b["switches_count"], 1);
    let (s, _) = app.delete("/api/switch/1/").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app.get("/api/switch/1/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b, json!({"detail": "No Switch matches the given query."}));
    app
});
